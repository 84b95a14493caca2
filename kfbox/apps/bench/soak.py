"""Soak: N up/down cycles of a throwaway sandbox, each followed by a look for everything it may
have left: containers, networks, volumes, its state folder, image tags into its registry."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import docker

from kfbox.apps.bench.sandboxes import bench_spec
from kfbox.engines import get_engine
from kfbox.engines.lifecycle import bring_up, take_down
from kfbox.host.docker_engine import LABEL
from kfbox.host.errors import KfboxError
from kfbox.host.progress import Reporter, quiet_reporter
from kfbox.host.statefiles import StateFolder


@dataclass
class SoakResult:
    cycles: int = 0
    failures: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    up_s: list[float] = field(default_factory=list)
    down_s: list[float] = field(default_factory=list)

    def median(self, values: list[float]) -> float:
        return statistics.median(values) if values else 0.0


def leftovers(client: docker.DockerClient, name: str, registry_port: int) -> list[str]:
    """What a removed sandbox still has: anything labelled, its state, tags into its registry."""
    filters = {"label": [f"{LABEL}={name}"]}
    left = [f"container {c.name}" for c in client.containers.list(
        ignore_removed=True, all=True, filters=filters)]
    left += [f"network {n.name}" for n in client.networks.list(filters=filters)]
    left += [f"volume {v.name}" for v in client.volumes.list(filters=filters)]
    state = StateFolder(name)
    if state.exists():
        left.append(f"state folder {state.path}")
    prefix = f"127.0.0.1:{registry_port}/"
    left += [f"image tag {t}" for i in client.images.list() for t in i.tags if t.startswith(prefix)]
    return left


def soak(client: docker.DockerClient, cycles: int, reporter: Reporter) -> SoakResult:
    """`cycles` up/down cycles, each of a new throwaway sandbox; a failed cycle is counted and
    cleaned up, and the soak goes on."""
    result = SoakResult()
    for cycle in range(1, cycles + 1):
        spec = bench_spec("soak")
        engine = get_engine(spec)
        with reporter.step(f"Soak cycle {cycle}/{cycles} ({spec.name})"):
            try:
                started = time.monotonic()
                bring_up(spec, quiet_reporter(), provision=False)
                result.up_s.append(time.monotonic() - started)
                started = time.monotonic()
                take_down(engine, quiet_reporter(), keep_data=False)
                result.down_s.append(time.monotonic() - started)
            except KfboxError as exc:
                result.failures.append(f"cycle {cycle}: {exc.line()}")
                take_down(engine, quiet_reporter(), keep_data=False)
            result.cycles += 1
            result.leftovers += [f"cycle {cycle}: {item}"
                                 for item in leftovers(client, spec.name, spec.ports.registry)]
    return result
