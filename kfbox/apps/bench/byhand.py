"""The train and tune steps through the harness against the same work run by hand under plain
`docker run`s, taken in turn so both see the same machine: what the platform adds around the
training scripts (the Kubeflow SDK's container backend, Optuna's ask/tell, the model store),
measured as a ratio within one run."""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import docker

from kfbox.apps.bench.served import built_image
from kfbox.engines.platform import MODEL_DIR_ENV, Platform, TrainJob
from kfbox.host.docker_engine import LABEL
from kfbox.host.errors import KfboxError
from kfbox.host.progress import Reporter
from kfbox.scenarios.scenario import load_scenario

HARNESS, BY_HAND = "harness", "docker run"
RENDEZVOUS_PORT = 29500
"""The port node 0's torchrun store listens on, the one the SDK's container backend gives
(kubeflow/sdk 0.5.0, kubeflow/trainer/backends/container/backend.py: master_port)."""


@dataclass
class SideBySide:
    harness_s: float
    docker_run_s: float
    harness_items_s: list[float] = field(default_factory=list)
    """Each trial's own wall time through the harness (tune only), every run."""
    by_hand_items_s: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.harness_s / self.docker_run_s

    @property
    def item_overhead_s(self) -> float:
        """A trial's median wall time through the harness less the same trial's by hand."""
        return statistics.median(self.harness_items_s) - statistics.median(self.by_hand_items_s)


def alternating(label: str, ways: dict[str, Callable[[int], object]], runs: int,
                reporter: Reporter) -> dict[str, float]:
    """Median seconds of `runs` runs each way, the order alternating run by run so that
    neither always goes second (onto caches the other warmed)."""
    times: dict[str, list[float]] = {way: [] for way in ways}
    order = list(ways.items())
    for run in range(1, runs + 1):
        this_run = order if run % 2 else order[::-1]
        with reporter.step(f"{label} {run}/{runs}: {this_run[0][0]}, then {this_run[1][0]}"):
            for way, work in this_run:
                started = time.monotonic()
                work(run)
                times[way].append(time.monotonic() - started)
    return {way: statistics.median(seconds) for way, seconds in times.items()}


def by_hand(client: docker.DockerClient, sandbox: str, image: str, argv: list[str]) -> float:
    """One training script under a plain `docker run`; its wall time."""
    started = time.monotonic()
    # Labelled with the sandbox, so its `down` finds one left by an interrupted bench.
    client.containers.run(image, argv, remove=True, labels={LABEL: sandbox},
                          environment={MODEL_DIR_ENV: "/tmp/model"})
    return time.monotonic() - started


def nodes_by_hand(client: docker.DockerClient, sandbox: str, image: str, argv: list[str],
                  nodes: int) -> None:
    """One job of `nodes` nodes under plain `docker run`s, as a person would start it: a
    network of its own, then every node at once, each running the script under torchrun with
    the static rendezvous the SDK's container backend gives (node 0 holds the store; the others
    connect to it, retrying until it listens). `argv` is a Python entry point (`python
    script.py ...`): torchrun runs the script itself, as the harness's jobs do (the runtime
    image's torchrun, kfbox/host/images/components/runtime/torchrun)."""
    name = f"bench-nodes-{secrets.token_hex(3)}"
    network = client.networks.create(name, labels={LABEL: sandbox})
    containers = []
    try:
        for rank in range(nodes):
            containers.append(client.containers.create(
                image, ["torchrun", f"--nnodes={nodes}", "--nproc-per-node=1",
                        f"--node-rank={rank}", "--rdzv-backend=static",
                        f"--rdzv-endpoint={name}-0:{RENDEZVOUS_PORT}", *argv[1:]],
                name=f"{name}-{rank}", network=name, labels={LABEL: sandbox},
                environment={MODEL_DIR_ENV: "/tmp/model"}))
        for container in containers:
            container.start()
        for rank, container in enumerate(containers):
            if container.wait()["StatusCode"]:
                said = container.logs(tail=5).decode(errors="replace").strip()
                raise KfboxError(f"node {rank} of the job by hand failed: {said}")
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()


def job_network_s(client: docker.DockerClient, sandbox: str, runs: int) -> float:
    """A bridge network made and removed, median of `runs`: what the SDK's container backend
    does around every job, one node's too (kubeflow/sdk 0.5.0,
    kubeflow/trainer/backends/container/backend.py: train() creates `<job>-net`, delete_job
    removes it), and a `docker run` on the default bridge does not."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        client.networks.create(f"bench-net-{secrets.token_hex(3)}",
                               labels={LABEL: sandbox}).remove()
        times.append(time.monotonic() - started)
    return statistics.median(times)


def _core_job(platform: Platform, work: Path, *, every_node: bool = False) -> TrainJob:
    """The core journey's training (digits, its args) on the image it builds: one node, or
    with `every_node` as many as the scenario trains on."""
    scenario = load_scenario("digits")
    return TrainJob("bench-train", built_image(platform, scenario, work).reference,
                    list(scenario.train.command), dict(scenario.train.args),
                    num_nodes=scenario.train.nodes if every_node else 1)


def train_step(client: docker.DockerClient, sandbox: str, platform: Platform, work: Path,
               runs: int, reporter: Reporter) -> SideBySide:
    """One node, the core journey's args, through the SDK's TrainerClient and by hand."""
    job = _core_job(platform, work)

    def through_harness(run: int) -> None:
        platform.training.run(replace(job, name=f"bench-{secrets.token_hex(3)}",
                                      model_key=f"bench/train-{run}"))

    medians = alternating("Train step", {
        HARNESS: through_harness,
        BY_HAND: lambda run: by_hand(client, sandbox, job.image, job.argv),
    }, runs, reporter)
    return SideBySide(medians[HARNESS], medians[BY_HAND])


def nodes_step(client: docker.DockerClient, sandbox: str, platform: Platform, work: Path,
               runs: int, reporter: Reporter) -> SideBySide:
    """The core journey's train job (its nodes, its args) through the SDK's TrainerClient and
    by hand under torchrun in plain containers. Through the SDK, a node past the first starts
    its script once node 0's port answers, checked every 2 s (kubeflow/sdk 0.5.0,
    kubeflow/trainer/backends/container/backend.py, the worker's `wait_for_master`); by hand
    every node starts at once."""
    job = _core_job(platform, work, every_node=True)

    def through_harness(run: int) -> None:
        platform.training.run(replace(job, name=f"bench-{secrets.token_hex(3)}",
                                      model_key=f"bench/nodes-{run}"))

    medians = alternating(f"{job.num_nodes}-node job", {
        HARNESS: through_harness,
        BY_HAND: lambda run: nodes_by_hand(client, sandbox, job.image, job.argv, job.num_nodes),
    }, runs, reporter)
    return SideBySide(medians[HARNESS], medians[BY_HAND])


def tune_step(client: docker.DockerClient, sandbox: str, platform: Platform, work: Path,
              runs: int, reporter: Reporter) -> SideBySide:
    """The core journey's experiment (its trials, as many at a time) through the platform's
    tuning, and by hand: the same trials' commands, with the values the first harness run's
    trials got, as many at a time in plain `docker run`s."""
    tune = load_scenario("digits").tune
    trial = replace(_core_job(platform, work), name="bench-trial", model_key="bench/tune")
    values: list[dict[str, str]] = []
    result = SideBySide(0.0, 0.0)

    def through_harness(run: int) -> None:
        tuned = platform.tuning.run(tune.experiment(f"bench-{secrets.token_hex(3)}-tune", trial))
        values[:] = values or [t.parameters for t in tuned.trials]
        result.harness_items_s += [t.duration_s for t in tuned.trials]

    def trials_by_hand(run: int) -> None:
        argvs = [replace(trial, args={**trial.args, **each}).argv for each in values]
        with ThreadPoolExecutor(max_workers=tune.parallel_trials) as pool:
            result.by_hand_items_s += pool.map(
                lambda argv: by_hand(client, sandbox, trial.image, argv), argvs)

    # The harness goes first in the first run: the trials by hand take its values.
    medians = alternating("Tune step", {HARNESS: through_harness, BY_HAND: trials_by_hand},
                          runs, reporter)
    result.harness_s, result.docker_run_s = medians[HARNESS], medians[BY_HAND]
    return result
