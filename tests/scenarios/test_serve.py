"""Each scenario's model server: model.py's KServe Model in-process, then a real ModelServer
process queried over v1 and v2 with kserve's REST client, its v2 input discovered from the
model's open inference protocol metadata, and its answers checked against the numpy reference."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import kserve
import numpy as np
import pytest
from kserve import InferenceRESTClient, RESTConfig
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse

from kfbox.engines.platform import MODEL_DIR_ENV
from kfbox.scenarios.scenario import Scenario
from tests.support.judge import assert_meets, assert_same_answers, load_module, scores
from tests.support.net import free_port
from tests.support.processes import stop, wait_until_answers

WRONG_SHAPE = [[0.5] * 3]
"""One row of three values: no scenario's model takes that."""


@pytest.fixture(scope="module")
def held_out(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    return scenario.reference_module().held_out()


@pytest.fixture(scope="module")
def expected(scenario: Scenario, trained: Any, held_out: tuple[np.ndarray, np.ndarray]) -> list:
    """What the served model must answer: the numpy reference's answers."""
    return scenario.reference_module().predict(trained.model_dir, held_out[0])


@pytest.fixture(scope="module")
def served_model(scenario: Scenario) -> type[kserve.Model]:
    """The kserve.Model subclass model.py defines."""
    module: ModuleType = load_module(scenario.path("model.py"), f"{scenario.name}_model")
    [model] = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, kserve.Model) and v.__module__ == module.__name__
    ]
    return model


def v2_request(model_name: str, declared: dict[str, Any], x: np.ndarray) -> InferRequest:
    """A v2 request as a generic client makes it: the input's name and datatype as declared."""
    tensor = InferInput(
        name=declared["name"], shape=list(x.shape), datatype=declared["datatype"], data=x.tolist()
    )
    return InferRequest(model_name=model_name, infer_inputs=[tensor])


def v2_answers(response: Any, declared: dict[str, Any]) -> list:
    """The answers of a v2 response, whose output must be the one the model declares."""
    assert isinstance(response, InferResponse)
    [output] = response.outputs
    assert (output.name, output.datatype) == (declared["name"], declared["datatype"])
    return output.as_numpy().tolist()


def check_served(
    scenario: Scenario, answers: list, expected: list, held_out: tuple[np.ndarray, np.ndarray]
) -> None:
    assert_same_answers(scenario, answers, expected)
    assert_meets(scenario.checks.serve, scores(scenario, held_out[1], answers), scenario.name)


def test_model_predicts_v1_and_v2_in_process(
    scenario: Scenario,
    trained: Any,
    served_model: type[kserve.Model],
    held_out: tuple[np.ndarray, np.ndarray],
    expected: list,
) -> None:
    model = served_model(scenario.serve.model_name, trained.model_dir)
    assert model.load() and model.ready
    x = held_out[0]
    [declared_input] = model.get_input_types()
    [declared_output] = model.get_output_types()

    # Through Model.__call__, the path the ModelServer's data plane takes.
    v1, _ = asyncio.run(model({"instances": x.tolist()}))
    check_served(scenario, v1["predictions"], expected, held_out)
    v2, _ = asyncio.run(model(v2_request(model.name, declared_input, x)))
    check_served(scenario, v2_answers(v2, declared_output), expected, held_out)

    with pytest.raises(InvalidInput, match="shape"):
        asyncio.run(model({"instances": WRONG_SHAPE}))


@pytest.fixture(scope="module")
def server(
    scenario: Scenario, trained: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`python model.py` as the serving container runs it, on a free port; stopped afterwards."""
    port = free_port()
    log: Path = tmp_path_factory.mktemp(f"{scenario.name}-server") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(scenario.path("model.py")), f"--http_port={port}",
             "--enable_grpc=false"],
            env={**os.environ, MODEL_DIR_ENV: str(trained.model_dir)},
            stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(proc, f"{base}/v2/health/ready", log, need_ok=True)
        yield base
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def metadata(server: str, scenario: Scenario) -> dict[str, Any]:
    """GET /v2/models/<name>: the open inference protocol's model metadata."""
    answer = httpx.get(f"{server}/v2/models/{scenario.serve.model_name}", timeout=30)
    answer.raise_for_status()
    return answer.json()


async def infer(protocol: str, base: str, data: Any, model_name: str) -> Any:
    client = InferenceRESTClient(RESTConfig(protocol=protocol, timeout=30))
    try:
        return await client.infer(base, data, model_name=model_name)
    finally:
        await client.close()


def test_metadata_lists_the_declared_inputs_and_outputs(
    metadata: dict[str, Any], scenario: Scenario, served_model: type[kserve.Model], trained: Any
) -> None:
    declared = served_model(scenario.serve.model_name, trained.model_dir)
    assert metadata["name"] == scenario.serve.model_name
    assert metadata["inputs"] == declared.get_input_types()
    assert metadata["outputs"] == declared.get_output_types()
    # One FP32 batch of rows in, one answer per row out; -1: the batch, of any size.
    [tensor] = metadata["inputs"]
    assert tensor["datatype"] == "FP32"
    assert tensor["shape"][0] == -1 and len(tensor["shape"]) == 2
    [answer] = metadata["outputs"]
    assert answer["shape"] == [-1]


def test_server_answers_v1(
    server: str, scenario: Scenario, held_out: tuple[np.ndarray, np.ndarray], expected: list
) -> None:
    data = {"instances": held_out[0].tolist()}
    answer = asyncio.run(infer("v1", server, data, scenario.serve.model_name))
    check_served(scenario, answer["predictions"], expected, held_out)


def test_server_answers_v2_as_its_metadata_says(
    server: str,
    metadata: dict[str, Any],
    scenario: Scenario,
    held_out: tuple[np.ndarray, np.ndarray],
    expected: list,
) -> None:
    name = scenario.serve.model_name
    request = v2_request(name, metadata["inputs"][0], held_out[0])
    answer = asyncio.run(infer("v2", server, request, name))
    check_served(scenario, v2_answers(answer, metadata["outputs"][0]), expected, held_out)


def test_server_rejects_a_wrong_shape(server: str, scenario: Scenario) -> None:
    data = {"instances": WRONG_SHAPE}
    with pytest.raises(httpx.HTTPStatusError, match="shape"):
        asyncio.run(infer("v1", server, data, scenario.serve.model_name))
