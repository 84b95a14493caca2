"""The digits model server: model.py's KServe Model in-process, then a real ModelServer process
queried over v1 and v2 with kserve's REST client, checked against the numpy reference."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from kserve import InferenceRESTClient, RESTConfig
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse

from kfbox.sandbox.platform import MODEL_DIR_ENV
from kfbox.scenarios.scenario import Scenario
from tests.processes import stop, wait_until_answers


@pytest.fixture(scope="module")
def held_out(digits: Scenario) -> tuple[np.ndarray, np.ndarray]:
    return digits.reference_module().held_out()


@pytest.fixture(scope="module")
def expected(digits: Scenario, trained: Any, held_out: tuple[np.ndarray, np.ndarray]) -> list[int]:
    """What the served model must answer: the numpy reference's labels."""
    return digits.reference_module().predict(trained.model_dir, held_out[0])


def v2_request(model_name: str, x: np.ndarray) -> InferRequest:
    tensor = InferInput(name="images", shape=list(x.shape), datatype="FP32", data=x.tolist())
    return InferRequest(model_name=model_name, infer_inputs=[tensor])


def check_served(labels: list[int], expected: list[int], y: np.ndarray, digits: Scenario) -> None:
    assert labels == expected
    assert float(np.mean(np.array(labels) == y)) >= digits.thresholds.serve_accuracy


def test_model_predicts_v1_and_v2_in_process(
    digits: Scenario, trained: Any, held_out: tuple[np.ndarray, np.ndarray], expected: list[int]
) -> None:
    spec = importlib.util.spec_from_file_location("digits_model", digits.path("model.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.DigitsModel(digits.serve.model_name, trained.model_dir)
    assert model.load() and model.ready
    x, y = held_out

    # Through Model.__call__, the path the ModelServer's data plane takes.
    v1, _ = asyncio.run(model({"instances": x.tolist()}))
    check_served(v1["predictions"], expected, y, digits)
    v2, _ = asyncio.run(model(v2_request(model.name, x)))
    assert isinstance(v2, InferResponse)
    check_served(v2.outputs[0].as_numpy().tolist(), expected, y, digits)

    with pytest.raises(InvalidInput):
        asyncio.run(model({"instances": [[0.0, 1.0]]}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(
    digits: Scenario, trained: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`python model.py` as the serving container runs it, on a free port; stopped afterwards."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(digits.path("model.py")), f"--http_port={port}",
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


async def infer(protocol: str, base: str, data: Any, model_name: str) -> Any:
    client = InferenceRESTClient(RESTConfig(protocol=protocol, timeout=30))
    try:
        return await client.infer(base, data, model_name=model_name)
    finally:
        await client.close()


def test_server_answers_v1(
    server: str, digits: Scenario, held_out: tuple[np.ndarray, np.ndarray], expected: list[int]
) -> None:
    x, y = held_out
    answer = asyncio.run(infer("v1", server, {"instances": x.tolist()}, digits.serve.model_name))
    check_served(answer["predictions"], expected, y, digits)


def test_server_answers_v2(
    server: str, digits: Scenario, held_out: tuple[np.ndarray, np.ndarray], expected: list[int]
) -> None:
    x, y = held_out
    name = digits.serve.model_name
    answer = asyncio.run(infer("v2", server, v2_request(name, x), name))
    assert isinstance(answer, InferResponse)
    check_served(answer.outputs[0].as_numpy().tolist(), expected, y, digits)


def test_server_rejects_a_wrong_shape(server: str, digits: Scenario) -> None:
    with pytest.raises(httpx.HTTPStatusError, match="shape"):
        asyncio.run(infer("v1", server, {"instances": [[0.5] * 8]}, digits.serve.model_name))
