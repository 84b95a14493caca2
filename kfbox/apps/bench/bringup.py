"""Bringing a sandbox up, timed: cold (empty image store: every image built, the registry
seeded by a push) or first, then warm (images built, sandbox down) and again (running); each
image's build time (cold) and size, and the registry seed's time."""

from __future__ import annotations

import json
import time

import docker

from kfbox.apps.bench.figures import BenchRun
from kfbox.apps.bench.sandboxes import clear_image_store
from kfbox.engines.lifecycle import take_down
from kfbox.engines.lite.engine import LiteEngine
from kfbox.host.progress import Reporter, quiet_reporter

SEED_STEP = "Seeding the registry with the ML runtime"
BUILD_STEP = "Building image kfbox/"
BASE_STEP = "Preparing base image"


def timed_up(engine: LiteEngine) -> tuple[float, Reporter]:
    """Seconds `up` took, and its reporter (its steps' timings)."""
    reporter = quiet_reporter()
    started = time.monotonic()
    engine.up(reporter)
    return time.monotonic() - started, reporter


def record_step_times(run: BenchRun, reporter: Reporter, first: str) -> None:
    """The image builds and the registry seed of an `up`, from its own step timings."""
    for timing in reporter.timings:
        if timing.name.startswith(BUILD_STEP):
            name = timing.name.removeprefix(BUILD_STEP).split(":")[0]
            run.add(f"build_{name}_s", timing.seconds, "s", f"{first} up: building its image")
        elif timing.name.startswith(BASE_STEP):
            run.add("build_base_s", timing.seconds, "s", f"{first} up: debootstrap or pull")
        elif timing.name == SEED_STEP:
            run.add(f"{first}_registry_seed_s", timing.seconds, "s",
                    "a new registry takes the ML runtime's layers (cache copy, else a push)")


def bring_up_figures(run: BenchRun, engine: LiteEngine, client: docker.DockerClient, *,
                     cold: bool, reporter: Reporter) -> None:
    first = "cold" if cold else "first"
    if cold:
        with reporter.step("Clearing kfbox images and download caches"):
            clear_image_store(client)
    with reporter.step(f"up, {'cold (empty image store)' if cold else 'first'}"):
        seconds, steps = timed_up(engine)
    run.add(f"{first}_up_s", seconds, "s", "empty image store" if cold else "images built")
    record_step_times(run, steps, first)
    take_down(engine, quiet_reporter(), keep_data=False)
    with reporter.step("up, warm (images built, sandbox down)"):
        seconds, steps = timed_up(engine)
    run.add("warm_up_s", seconds, "s", "images built, sandbox down")
    record_step_times(run, steps, "warm")
    with reporter.step("up again (sandbox running)"):
        seconds, _ = timed_up(engine)
    run.add("re_up_s", seconds, "s", "sandbox running")
    used = json.loads(engine.state_file.read_text())
    tags = {name: item["image"] for name, item in used["components"].items()}
    tags["runtime"] = used["runtime_image"]
    for name, tag in tags.items():
        size = client.images.get(tag).attrs["Size"]
        run.add(f"image_{name}_mib", size / 2**20, "MiB", tag)
