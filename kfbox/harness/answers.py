"""Asking a served model for answers, as a generic open-inference-protocol client would, and
judging them: the model's declared metadata, v1 and v2 predictions through KServe's own REST
client, the comparison with the model evaluated locally, and the scores on held-out truth."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import requests

from kfbox.engines.platform import Endpoint

Answers = Literal["labels", "numbers"]
FALLBACK_INPUT = {"name": "input-0", "datatype": "FP32"}
"""What a v2 request uses when the model declares no inputs (the serve.metadata check fails)."""


@dataclass
class Metadata:
    """The model's open-inference-protocol metadata (GET /v2/models/NAME)."""

    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    @property
    def declared(self) -> bool:
        return bool(self.inputs and self.outputs)


def metadata(endpoint: Endpoint) -> Metadata:
    """What the model declares; an empty Metadata with the reason when it answers nothing."""
    url = f"{endpoint.url}/v2/models/{endpoint.model_name}"
    try:
        answer = requests.get(url, timeout=30)
        answer.raise_for_status()
        body = answer.json()
    except (requests.RequestException, ValueError) as exc:
        return Metadata(error=f"GET {url}: {exc}")
    return Metadata(list(body.get("inputs") or []), list(body.get("outputs") or []))


def preload_client() -> threading.Thread:
    """Import KServe's REST client in the background (several seconds of CPU, most of a cold
    serve step's own time) while the model server starts: `ask` then finds it imported, and the
    server's time to its first answer is its own, not the harness's import."""
    def load() -> None:
        import kserve  # noqa: F401  (imported for its side effect: the module cached)

    thread = threading.Thread(target=load, name="kfbox-preload-kserve", daemon=True)
    thread.start()
    return thread


def ask(protocol: str, endpoint: Endpoint, x: np.ndarray, declared: Metadata) -> list[Any]:
    """The model's answers for `x`, one per row, asked with KServe's REST client: v1
    `instances`, or a v2 tensor named and typed as the model declares its first input."""
    # kserve parses the command line when imported: only here, where it is used.
    from kserve import InferenceRESTClient, InferInput, InferRequest, InferResponse, RESTConfig

    if protocol == "v1":
        payload: Any = {"instances": x.tolist()}
    else:
        spec = declared.inputs[0] if declared.inputs else FALLBACK_INPUT
        tensor = InferInput(name=spec["name"], shape=list(x.shape), datatype=spec["datatype"])
        tensor.set_data_from_numpy(x.astype(_NUMPY_TYPES.get(spec["datatype"], np.float32)))
        payload = InferRequest(model_name=endpoint.model_name, infer_inputs=[tensor])

    async def infer() -> Any:
        client = InferenceRESTClient(RESTConfig(protocol=protocol, timeout=60))
        try:
            return await client.infer(endpoint.url, payload, model_name=endpoint.model_name)
        finally:
            await client.close()

    answer = asyncio.run(infer())
    if isinstance(answer, InferResponse):
        return answer.outputs[0].as_numpy().reshape(len(x), -1).squeeze(-1).tolist()
    return list(answer["predictions"])


_NUMPY_TYPES = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64}


@dataclass
class Comparison:
    differ: int
    """Answers that are not the local model's (labels unequal, numbers beyond the tolerance)."""
    largest: float
    """The largest difference between two numbers (0 for labels)."""


def compare(served: list[Any], local: list[Any], answers: Answers, tolerance: float) -> Comparison:
    if len(served) != len(local):
        return Comparison(abs(len(served) - len(local)) + len(local), float("inf"))
    if answers == "labels":
        return Comparison(sum(int(a) != int(b) for a, b in zip(served, local, strict=True)), 0.0)
    gaps = np.abs(np.asarray(served, dtype=float) - np.asarray(local, dtype=float))
    return Comparison(int(np.sum(gaps > tolerance)), float(gaps.max(initial=0.0)))


def score(answers: Answers, truth: np.ndarray, served: list[Any]) -> dict[str, float]:
    """The harness's own metrics of served answers against the held-out truth: accuracy for
    labels; rmse, mae and r2 for numbers."""
    if answers == "labels":
        return {"accuracy": round(float(np.mean(np.asarray(served) == truth)), 4)}
    y = np.asarray(truth, dtype=float)
    error = np.asarray(served, dtype=float) - y
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "rmse": round(float(np.sqrt(np.mean(error**2))), 4),
        "mae": round(float(np.mean(np.abs(error))), 4),
        "r2": round(1 - float(np.sum(error**2)) / total, 4) if total else 0.0,
    }
