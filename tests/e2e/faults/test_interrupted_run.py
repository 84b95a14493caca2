"""Ctrl-C (SIGINT) during `kfbox certify` and `kfbox test`: every workload of the run is removed,
the bundle is still written with the interrupted step marked, and the exit code is 130."""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest

from kfbox.host.docker_engine import LABEL, ROLE_LABEL
from tests.support.faults import Box, finish, interrupt, read_until
from tests.support.sandboxes import run_folder, run_record

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
TRAINJOB_LABEL = "trainer.kubeflow.org/trainjob-name"


def workloads(client: docker.DockerClient, box: Box) -> list[str]:
    """The sandbox's containers other than its components, and any training job container."""
    mine = client.containers.list(
        ignore_removed=True, all=True, filters={"label": f"{LABEL}={box.name}"})
    return [c.name for c in mine if c.labels.get(ROLE_LABEL) != "component"]


@pytest.mark.parametrize("command", ["certify", "test"])
def test_ctrl_c_removes_the_runs_workloads_and_keeps_its_record(
    running_box: Box, docker_client: docker.DockerClient, tmp_path: Path, command: str
) -> None:
    run = running_box.start(command, "--profile", "quick", "--out", str(tmp_path))
    read_until(run, "train     passed")  # tune is starting: trials are about to run
    deadline = time.monotonic() + 60
    while not workloads(docker_client, running_box):  # a trial's containers are up
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.1)
    interrupt(run)
    code, output = finish(run, timeout_s=300)
    assert code == 130, output[-3000:]
    assert workloads(docker_client, running_box) == []
    folder = run_folder(tmp_path)
    if command == "certify":
        report = json.loads((folder / "report.json").read_text())
        steps = {s["name"]: s["status"] for s in report["journeys"][0]["steps"]}
        assert report["certified"] is False
        assert report["suite"]["error"] == "the run was interrupted (Ctrl-C)"
    else:
        [journey] = run_record(folder)["journeys"]
        steps = {s["name"]: s["status"] for s in journey["steps"]}
    assert steps["train"] == "passed" and steps["tune"] == "interrupted"
    assert "serve" not in steps
