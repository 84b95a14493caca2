"""`kfbox bench`: the numbers the targets are about, measured in one run on this host.

Cold and warm `up`, idle memory of a running sandbox, and the harness's overhead on the train
step against the same command under a plain `docker run`. Targets are reported beside the
numbers, never asserted: these machines are noisy, so ratios are measured in one run.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker

from kfbox.sandbox import paths
from kfbox.sandbox.config import SandboxSpec, load_spec
from kfbox.sandbox.docker_engine import LABEL, connect
from kfbox.sandbox.engines.lite.engine import LiteEngine
from kfbox.sandbox.errors import KfboxError
from kfbox.sandbox.images.base import IMAGE_LABEL
from kfbox.sandbox.lifecycle import take_down
from kfbox.sandbox.platform import MODEL_DIR_ENV, TrainJob
from kfbox.sandbox.progress import Reporter, quiet_reporter
from kfbox.scenarios.scenario import load_scenario

TARGETS = {"warm_up_s": 15.0, "idle_memory_mib": 1536.0, "train_overhead_ratio": 1.3}


@dataclass
class BenchResult:
    numbers: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def verdicts(self) -> dict[str, bool]:
        return {k: self.numbers[k] <= v for k, v in TARGETS.items() if k in self.numbers}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "targets": TARGETS, "within_target": self.verdicts()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_spec() -> SandboxSpec:
    """A sandbox of its own, on free ports, so the user's sandboxes are never touched."""
    return load_spec(
        None,
        {
            "name": f"bench-{secrets.token_hex(3)}",
            "ports.jupyter": _free_port(),
            "ports.registry": _free_port(),
        },
    )


def clear_image_store(client: docker.DockerClient) -> None:
    """Remove every kfbox image and the download caches: the next `up` starts from nothing."""
    in_use = {c.image.id for c in client.containers.list(all=True, filters={"label": LABEL})}
    images = client.images.list(filters={"label": IMAGE_LABEL})
    if any(image.id in in_use for image in images):
        raise KfboxError(
            "--cold needs every kfbox sandbox down (their images are in use)",
            fix="run `kfbox down` for each sandbox, or bench without --cold",
        )
    for image in images:
        client.images.remove(image.id, force=True)
    for kind in ("base", "wheels"):
        shutil.rmtree(paths.cache_dir(kind), ignore_errors=True)


def idle_memory_mib(client: docker.DockerClient, sandbox: str) -> float:
    """Sum of the resident memory of the sandbox's containers (cgroup rss, not page cache)."""
    total = 0
    for container in client.containers.list(filters={"label": f"{LABEL}={sandbox}"}):
        stats = container.stats(stream=False)["memory_stats"]
        inner = stats.get("stats", {})
        total += inner.get("rss", inner.get("anon", stats.get("usage", 0)))
    return total / 2**20


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


# How the SDK's container backend launches a single-node job: the same launcher, run by hand.
TORCHRUN = (
    "torchrun",
    "--nproc_per_node=1",
    "--nnodes=1",
    "--node-rank=0",
    "--rdzv-backend=static",
    "--rdzv-endpoint=localhost:29500",
)


def train_overhead(engine: LiteEngine, reporter: Reporter, runs: int) -> dict[str, float]:
    """Median seconds of the train step through the harness (TrainerClient, one node), of the
    same command under a plain `docker run`, and of it under `docker run` + torchrun (the
    launcher every TrainJob node uses), taken in turn so all three see the same machine."""
    scenario = load_scenario("digits")  # the core journey's train args, on one node
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        platform = engine.platform(run_dir / "bench")
        try:
            workspace = run_dir / "workspace"
            workspace.mkdir()
            (workspace / "train.py").write_text(scenario.training_code())
            context = scenario.build_context(workspace, run_dir / "context")
            image = platform.images.build(
                context, "kfbox/bench", build_args={"BASE_IMAGE": platform.runtime_image}
            )
            args = [f"--{k}={v}" for k, v in scenario.train.args.items()]
            commands = {
                "docker_run": [*scenario.train.command, *args],
                "docker_run_torchrun": [*TORCHRUN, scenario.train.command[-1], *args],
            }
            samples: dict[str, list[float]] = {"harness": [], **{k: [] for k in commands}}
            for i in range(runs):
                with reporter.step(f"Train step, run {i + 1}/{runs} (harness, docker run)"):
                    job = TrainJob(
                        f"bench-{secrets.token_hex(3)}",
                        image.reference,
                        list(scenario.train.command),
                        dict(scenario.train.args),
                        model_key=f"bench/{i}",
                    )
                    samples["harness"].append(timed(lambda job=job: platform.training.run(job)))
                    for key, command in commands.items():
                        samples[key].append(
                            timed(
                                lambda command=command: engine.client.containers.run(
                                    image.reference,
                                    command,
                                    remove=True,
                                    labels=engine.labels(),
                                    environment={MODEL_DIR_ENV: "/tmp/model"},
                                )
                            )
                        )
        finally:
            platform.close()
    return {key: statistics.median(values) for key, values in samples.items()}


def run_bench(*, cold: bool, train_runs: int, reporter: Reporter) -> BenchResult:
    client = connect()
    result = BenchResult()
    engine = LiteEngine(bench_spec())
    try:
        if cold:
            with reporter.step("Clearing kfbox images and download caches"):
                clear_image_store(client)
        with reporter.step("up, " + ("cold (empty image store)" if cold else "images cached")):
            first = timed(lambda: engine.up(quiet_reporter()))
        result.numbers["cold_up_s" if cold else "first_up_s"] = round(first, 2)
        take_down(engine, quiet_reporter(), keep_data=False)
        with reporter.step("up, warm (images built, sandbox down)"):
            result.numbers["warm_up_s"] = round(timed(lambda: engine.up(quiet_reporter())), 2)
        with reporter.step("up again (sandbox running)"):
            result.numbers["re_up_s"] = round(timed(lambda: engine.up(quiet_reporter())), 2)
        time.sleep(5)  # let the servers settle before measuring what they hold when idle
        result.numbers["idle_memory_mib"] = round(idle_memory_mib(client, engine.spec.name), 1)
        if train_runs:
            medians = train_overhead(engine, reporter, train_runs)
            result.numbers.update(
                train_harness_s=round(medians["harness"], 2),
                train_docker_run_s=round(medians["docker_run"], 2),
                train_docker_run_torchrun_s=round(medians["docker_run_torchrun"], 2),
                train_overhead_ratio=round(medians["harness"] / medians["docker_run"], 2),
                train_overhead_beyond_torchrun_ratio=round(
                    medians["harness"] / medians["docker_run_torchrun"], 2
                ),
            )
            result.notes["train"] = (
                f"median of {train_runs}; one node, the core journey's train args; "
                "harness = TrainerClient container backend incl. registry pull; "
                "beyond_torchrun compares with the SDK's own launcher run by hand"
            )
    finally:
        left = take_down(engine, quiet_reporter(), keep_data=False)
        if left:
            result.notes["cleanup"] = "left: " + ", ".join(left)
    return result
