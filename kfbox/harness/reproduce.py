"""`kfbox reproduce`: the served model's training run again from a certificate's lineage (the same
image digest, parameters, node count and so the same seed) on a running sandbox, its metrics
compared with the certificate's within the scenario's tolerance."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfbox.engines.base import Engine
from kfbox.engines.platform import TrainJob
from kfbox.harness.certify import Certificate
from kfbox.host.errors import UsageError
from kfbox.scenarios.scenario import Scenario


@dataclass
class Compared:
    metric: str
    certified: float | None
    again: float | None
    matched: bool


@dataclass
class Reproduction:
    run: str
    """The certificate's run id (the served model's training run)."""
    image: str
    parameters: dict[str, str]
    tolerance: float
    compared: list[Compared] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def matched(self) -> bool:
        return bool(self.compared) and all(c.matched for c in self.compared)


def lineage_of(certificate: Certificate, source: Path) -> dict[str, Any]:
    """The served model's lineage in the certificate (its first journey that served one)."""
    for journey in certificate.journeys:
        for step in journey.steps:
            lineage = step.metrics.get("lineage") if step.name == "serve" else None
            if isinstance(lineage, dict) and lineage.get("run", {}).get("command"):
                return lineage
    raise UsageError(f"{str(source)!r} names no served model's lineage",
                     fix="give the results of a `kfbox certify` whose serve step passed on a "
                     "sandbox with a tracking server")


def reproduce(engine: Engine, lineage: dict[str, Any], scenario: Scenario,
              work_dir: Path) -> Reproduction:
    """Train the lineage's run again on `engine`'s sandbox and compare its metrics."""
    run, image = lineage["run"], lineage["image"]["reference"]
    parameters = dict(run["parameters"])
    nodes = int(parameters.pop("nodes", "1"))
    stamp = secrets.token_hex(3)
    platform = engine.platform(work_dir)
    started = time.monotonic()
    try:
        result = platform.training.run(TrainJob(
            name=f"reproduce-{stamp}", image=image, command=list(run["command"]),
            args=parameters, num_nodes=nodes, model_key=f"reproduce/{stamp}",
            timeout_s=scenario.train.timeout_s))
    finally:
        platform.close()
    wanted = scenario.reproduce.metrics or [scenario.tune.objective]
    tolerance = scenario.reproduce.tolerance
    reproduction = Reproduction(run["id"], image, {**parameters, "nodes": str(nodes)},
                                tolerance, duration_s=time.monotonic() - started)
    for metric in wanted:
        before, after = run["metrics"].get(metric), result.metrics.get(metric)
        matched = before is not None and after is not None and abs(after - before) <= tolerance
        reproduction.compared.append(Compared(metric, before, after, matched))
    return reproduction
