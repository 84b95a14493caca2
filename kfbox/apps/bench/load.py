"""Serving under load: a bounded number of requests at a fixed concurrency to a served model,
one row each, half over v1 and half over v2, asked with KServe's own REST client as a real
client would; throughput, p50/p99 latency and errors per protocol."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kfbox.engines.platform import Endpoint
from kfbox.harness import answers
from kfbox.scenarios.scenario import load_scenario


@dataclass
class LoadResult:
    requests: int
    concurrency: int
    seconds: float
    latencies_s: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first_error: str = ""

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, protocol: str, q: float) -> float:
        values = sorted(self.latencies_s.get(protocol, []))
        if not values:
            return 0.0
        return float(np.percentile(values, q))


def _payloads(endpoint: Endpoint, row: np.ndarray, declared: answers.Metadata) -> dict[str, Any]:
    from kserve import InferInput, InferRequest

    spec = declared.inputs[0] if declared.inputs else answers.FALLBACK_INPUT
    tensor = InferInput(name=spec["name"], shape=[1, row.shape[0]], datatype=spec["datatype"])
    tensor.set_data_from_numpy(row.reshape(1, -1).astype(np.float32))
    return {"v1": {"instances": [row.tolist()]},
            "v2": InferRequest(model_name=endpoint.model_name, infer_inputs=[tensor])}


async def _drive(endpoint: Endpoint, payloads: dict[str, Any], result: LoadResult) -> None:
    from kserve import InferenceRESTClient, RESTConfig

    clients = {p: InferenceRESTClient(RESTConfig(protocol=p, timeout=60)) for p in payloads}
    remaining = iter(range(result.requests))

    async def worker() -> None:
        for number in remaining:  # one shared counter: exactly `requests` are sent
            protocol = "v1" if number % 2 == 0 else "v2"
            started = time.perf_counter()
            try:
                await clients[protocol].infer(endpoint.url, payloads[protocol],
                                              model_name=endpoint.model_name)
            except Exception as exc:  # any failure is an error to count, not to stop at
                result.errors[protocol] = result.errors.get(protocol, 0) + 1
                result.first_error = result.first_error or f"{protocol}: {exc}"
                continue
            result.latencies_s.setdefault(protocol, []).append(time.perf_counter() - started)

    try:
        await asyncio.gather(*(worker() for _ in range(result.concurrency)))
    finally:
        for client in clients.values():
            await client.close()


def load(endpoint: Endpoint, requests: int, concurrency: int) -> LoadResult:
    """Send `requests` requests, `concurrency` at a time, alternating v1 and v2."""
    x, _ = load_scenario("digits").reference_module().held_out()
    payloads = _payloads(endpoint, x[0], answers.metadata(endpoint))
    result = LoadResult(requests, concurrency, 0.0)
    started = time.perf_counter()
    asyncio.run(_drive(endpoint, payloads, result))
    result.seconds = time.perf_counter() - started
    return result


