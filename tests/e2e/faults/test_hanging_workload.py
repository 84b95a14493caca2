"""A workload that hangs (a training job that prints one line and never exits) is bounded by
the scenario's timeout, reported as timed out with its last output, and removed."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest
import yaml

from kfbox.harness.runner import workspace_for
from kfbox.scenarios.scenario import SCENARIO_FILE
from tests.support.faults import Box, finish
from tests.support.sandboxes import run_folder, run_record
from tests.support.training_code import as_a_job_only

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
TIMEOUT_S = 20


def training_hangs(folder: Path) -> None:
    """train.py says one thing, then sleeps for an hour, as a training job only (torchrun sets
    WORLD_SIZE; the notebook's prototype of it in the kernel trains); the scenario allows
    TIMEOUT_S."""
    path = folder / "explore.ipynb"
    notebook = json.loads(path.read_text())
    [cell] = [c for c in notebook["cells"]
              if "".join(c["source"]).startswith("%%writefile train.py\n")]
    cell["source"] = as_a_job_only("".join(cell["source"]),
                                   'print("loading the data", flush=True)\ntime.sleep(3600)')
    path.write_text(json.dumps(notebook, indent=1))
    raw = yaml.safe_load((folder / SCENARIO_FILE).read_text())
    raw["train"]["timeout_s"] = TIMEOUT_S
    (folder / SCENARIO_FILE).write_text(yaml.safe_dump(raw, sort_keys=False))


def test_a_hung_training_job_times_out_with_its_last_output(
    running_box: Box, docker_client: docker.DockerClient, digits_copy: Path, tmp_path: Path
) -> None:
    training_hangs(digits_copy)
    out = tmp_path / "out"
    run = running_box.start("test", "--profile", "quick", "--scenario", str(digits_copy),
                            "--out", str(out))
    code, output = finish(run)
    assert code == 1, output[-3000:]
    [journey] = run_record(run_folder(out))["journeys"]
    train = next(s for s in journey["steps"] if s["name"] == "train")
    assert train["status"] == "failed"
    assert train["reason"].endswith(f"timed out after {TIMEOUT_S}s; its last output: "
                                    "loading the data")
    [run_dir] = workspace_for(run_folder(out)).glob("quick-*")  # named by the run id
    left = docker_client.containers.list(ignore_removed=True, all=True)
    assert not [c.name for c in left if c.name.startswith(run_dir.name)]
