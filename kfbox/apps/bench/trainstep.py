"""The train step's cost through the harness against the same training run by hand: one node,
the core journey's args, through the Kubeflow SDK's container backend (TrainerClient) and under
a plain `docker run python train.py`, taken in turn so both see the same machine."""

from __future__ import annotations

import secrets
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from kfbox.apps.bench.served import built_image
from kfbox.engines.platform import MODEL_DIR_ENV, Platform, TrainJob
from kfbox.host.docker_engine import LABEL
from kfbox.host.progress import Reporter
from kfbox.scenarios.scenario import load_scenario


@dataclass
class TrainStep:
    harness_s: float
    docker_run_s: float

    @property
    def ratio(self) -> float:
        return self.harness_s / self.docker_run_s


def train_step(client: docker.DockerClient, sandbox: str, platform: Platform, work: Path,
               runs: int, reporter: Reporter) -> TrainStep:
    """Medians of `runs` runs each way, the order alternating run by run so that neither
    always goes second (onto caches the other warmed)."""
    scenario = load_scenario("digits")
    image = built_image(platform, scenario, work)
    argv = [*scenario.train.command, *(f"--{k}={v}" for k, v in scenario.train.args.items())]

    def through_harness(run: int) -> None:
        platform.training.run(TrainJob(f"bench-{secrets.token_hex(3)}", image.reference,
                                       list(scenario.train.command), dict(scenario.train.args),
                                       model_key=f"bench/train-{run}"))

    def by_hand(run: int) -> None:
        # Labelled with the sandbox, so its `down` finds one left by an interrupted bench.
        client.containers.run(image.reference, argv, remove=True, labels={LABEL: sandbox},
                              environment={MODEL_DIR_ENV: "/tmp/model"})

    times: dict[str, list[float]] = {"harness": [], "docker run": []}
    ways = [("harness", through_harness), ("docker run", by_hand)]
    for run in range(1, runs + 1):
        order = ways if run % 2 else ways[::-1]
        with reporter.step(f"Train step {run}/{runs}: {order[0][0]}, then {order[1][0]}"):
            for way, train in order:
                started = time.monotonic()
                train(run)
                times[way].append(time.monotonic() - started)
    return TrainStep(statistics.median(times["harness"]), statistics.median(times["docker run"]))
