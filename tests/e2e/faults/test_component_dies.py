"""A component of a running sandbox dies during a journey: the step fails in one line naming the
component and the fix (`kfbox up`), the later steps are blocked rather than hung, `up` repairs
it, and the next journey passes. The model store cannot be taken away while it is in use."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import pytest

from kfbox.harness.requirements import steps_for
from tests.support.faults import Box, finish, read_until
from tests.support.sandboxes import run_folder, run_record

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

STEPS = steps_for("quick")
"""The steps of the quick journey these faults interrupt."""


def kill(client: docker.DockerClient, box: Box, component: str) -> None:
    client.containers.get(f"kfbox-{box.name}-{component}").kill()


def failed_run(box: Box, out: Path, process) -> dict[str, dict]:
    code, output = finish(process)
    assert code == 1, output[-3000:]
    [journey] = run_record(run_folder(out))["journeys"]
    return {step["name"]: step for step in journey["steps"]}


def assert_blocked_after(steps: dict[str, dict], failed: str) -> None:
    later = STEPS[STEPS.index(failed) + 1:]
    assert [steps[name]["status"] for name in later] == ["blocked"] * len(later)


def test_the_notebook_server_dies_during_the_notebook(
    running_box: Box, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    assert running_box.kfbox("up").returncode == 0
    run = running_box.start("test", "--profile", "quick", "--out", str(tmp_path))
    deadline = time.monotonic() + 180
    while not running_box.jupyter("/api/kernels").json():  # the notebook is running now
        assert time.monotonic() < deadline and run.poll() is None, "no kernel started"
        time.sleep(0.2)
    kill(docker_client, running_box, "jupyter")
    steps = failed_run(running_box, tmp_path, run)
    notebook = steps["notebook"]
    assert notebook["status"] == "failed"
    assert notebook["reason"].startswith("the sandbox's jupyter (exited) is down: run "
                                         "`kfbox up` to repair it (")
    assert_blocked_after(steps, "notebook")


def test_the_registry_dies_after_the_build(
    running_box: Box, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    repaired = running_box.kfbox("up")
    assert repaired.returncode == 0 and "jupyter: started" in repaired.stderr
    run = running_box.start("test", "--profile", "quick", "--out", str(tmp_path))
    read_until(run, "build     passed")
    kill(docker_client, running_box, "registry")  # every training job pulls from it
    steps = failed_run(running_box, tmp_path, run)
    failed = next(name for name in STEPS if steps[name]["status"] == "failed")
    assert failed in ("train", "tune"), steps  # the train job's pull may just have made it
    assert steps[failed]["reason"].startswith("the sandbox's registry (exited) is down: run "
                                              "`kfbox up` to repair it (")
    assert_blocked_after(steps, failed)


def test_after_up_the_journey_passes_and_the_store_stays_while_in_use(
    running_box: Box, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    repaired = running_box.kfbox("up")
    assert repaired.returncode == 0 and "registry: started" in repaired.stderr
    run = running_box.start("test", "--profile", "quick", "--out", str(tmp_path))
    read_until(run, "train     passed")
    store = docker_client.volumes.get(f"kfbox-{running_box.name}-models")
    with pytest.raises(docker.errors.APIError) as refused:
        store.remove()
    assert refused.value.status_code == 409  # in use: the engine refuses, the journey goes on
    code, output = finish(run)
    assert code == 0, output[-3000:]
