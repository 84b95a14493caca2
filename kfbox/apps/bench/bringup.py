"""Bringing a sandbox up, timed: cold (empty image store: every image built, the registry
seeded by a push) or first, then warm (images built, sandbox down) and again (running); each
image's build time (cold) and size, and the registry seed's time."""

from __future__ import annotations

import time

import docker

from kfbox.apps.bench.figures import BenchRun
from kfbox.apps.bench.sandboxes import clear_image_store
from kfbox.engines.base import Engine, UpResult
from kfbox.engines.lifecycle import bring_up, take_down
from kfbox.host.progress import Reporter, quiet_reporter

UP_AS_RUN = "as `kfbox up` runs it: preflight and the lock included"
"""Since kfbox 0.1's layering the up figures time lifecycle.bring_up, not the engine's own up:
about 0.03 s of preflight more, which shows in re_up_s (said in each figure's note)."""


def timed_up(engine: Engine) -> tuple[float, UpResult]:
    """Seconds `up` took, through the entry point every command uses, and what it did."""
    started = time.monotonic()
    result = bring_up(engine.spec, quiet_reporter(), provision=False)
    return time.monotonic() - started, result


def record_step_times(run: BenchRun, result: UpResult, first: str) -> None:
    """The image builds and the registry seed of an `up`, from its own list of actions."""
    seed = [s.seconds for s in result.steps if s.action in ("registry-cache", "registry-seed")]
    for step in result.steps:
        kind, _, name = step.action.partition(":")
        if step.action == "image:base":
            run.add("build_base_s", step.seconds, "s", f"{first} up: debootstrap or pull")
        elif kind == "image":
            run.add(f"build_{name}_s", step.seconds, "s", f"{first} up: building its image")
        elif step.action == "registry-cache:build":
            run.add(f"{first}_registry_cache_build_s", step.seconds, "s",
                    "the host's engine compresses the ML runtime's layers for every rootless "
                    "sandbox's registry, once, beside the copy of the images")
    if seed:
        # Since kfbox 0.1's registry cache for rootless sandboxes, the copy of the cache is a
        # step of its own before the push; the figure is both, as before.
        run.add(f"{first}_registry_seed_s", sum(seed), "s",
                "a new registry takes the ML runtime's layers: the host's cache copied and a "
                "push that sends what the registry lacks (all of them without the cache)")


def bring_up_figures(run: BenchRun, engine: Engine, client: docker.DockerClient, *,
                     cold: bool, reporter: Reporter) -> None:
    first = "cold" if cold else "first"
    if cold:
        with reporter.step("Clearing kfbox images and download caches"):
            clear_image_store(client)
    with reporter.step(f"up, {'cold (empty image store)' if cold else 'first'}"):
        seconds, steps = timed_up(engine)
    run.add(f"{first}_up_s", seconds, "s",
            f"{'empty image store' if cold else 'images built'}; {UP_AS_RUN}")
    record_step_times(run, steps, first)
    take_down(engine, quiet_reporter(), keep_data=False)
    with reporter.step("up, warm (images built, sandbox down)"):
        seconds, steps = timed_up(engine)
    run.add("warm_up_s", seconds, "s", f"images built, sandbox down; {UP_AS_RUN}")
    record_step_times(run, steps, "warm")
    with reporter.step("up again (sandbox running)"):
        seconds, again = timed_up(engine)
    run.add("re_up_s", seconds, "s", f"sandbox running; {UP_AS_RUN}")
    for component in again.status.components:
        if component.image:  # tag@image id, as the engine reports what each component runs
            tag, _, image_id = component.image.rpartition("@")
            size = client.images.get(image_id).attrs["Size"]
            run.add(f"image_{component.name}_mib", size / 2**20, "MiB", tag)
