"""provision_host/run_playbook's contract: GPU mode, the GPU play's selection, one-line failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kfbox.host.errors import KfboxError, UsageError
from kfbox.host.progress import quiet_reporter
from kfbox.host.provision.events import failure_message
from kfbox.host.provision.runner import HOST_PLAYBOOK, PLAYBOOKS, Target, run_playbook, wants_gpu

CONNECTION_PLUGINS = Path(__file__).parent / "connection_plugins"


def test_unknown_gpu_mode_is_a_usage_error():
    with pytest.raises(UsageError, match="'maybe' is not one of auto, on, off"):
        wants_gpu("maybe")


def test_gpu_on_and_off_override_detection():
    assert wants_gpu("on") is True
    assert wants_gpu("off") is False


@pytest.mark.parametrize(("gpu", "hosts"), [(True, 1), (False, 0)])
def test_nvidia_play_runs_only_with_a_gpu(gpu: bool, hosts: int):
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "--list-hosts",
         "-i", "somehost,", "-e", f"kfbox_gpu={str(gpu).lower()}", HOST_PLAYBOOK],
        cwd=PLAYBOOKS, capture_output=True, text=True, check=True,
    ).stdout
    nvidia_play = listing.split("NVIDIA container toolkit")[1]
    assert f"hosts ({hosts}):" in nvidia_play


def test_failure_is_one_line_naming_task_message_and_log(tmp_path: Path):
    """A target that cannot be reached fails the first task: the error names it, ansible's
    message and the full log, and the role's progress step is marked failed."""
    reporter = quiet_reporter()
    missing = Target(
        host="kfbox-no-such-container",
        hostvars={"ansible_connection": "kfbox_docker"},
        envvars={"ANSIBLE_CONNECTION_PLUGINS": str(CONNECTION_PLUGINS)},
    )

    with pytest.raises(KfboxError) as failed:
        run_playbook(reporter, missing, gpu=False, private_data_dir=tmp_path)

    line = failed.value.line()
    assert "\n" not in line
    assert line.startswith(
        "provision failed at docker_engine : Install the Docker engine (Debian's docker.io): "
    )
    assert "kfbox-no-such-container" in line
    log = Path(line.rsplit("(full log: ", 1)[1].rstrip(")"))
    assert log.is_file() and log.is_relative_to(tmp_path)
    assert "UNREACHABLE" in log.read_text()
    assert [(t.name, t.ok) for t in reporter.timings] == [("Provision: docker engine", False)]


def test_failure_before_any_task_names_ansibles_error(tmp_path: Path):
    broken = Target(host="somehost", envvars={"ANSIBLE_STRATEGY": "no_such_strategy"})

    with pytest.raises(KfboxError) as failed:
        run_playbook(quiet_reporter(), broken, gpu=False, private_data_dir=tmp_path)

    line = failed.value.line()
    assert "\n" not in line
    assert line.startswith("provision failed: [ERROR]: Invalid play strategy specified: ")
    assert f"(full log: {tmp_path}/artifacts/" in line


def test_failure_message_prefers_a_failed_loop_items_stderr():
    result = {"msg": "One or more items failed", "results": [
        {"failed": False, "msg": ""},
        {"failed": True, "msg": "non-zero return code",
         "stderr": "first\nsh: 1: cannot create /proc/sys/x: Read-only file system"},
    ]}
    assert failure_message(result) == (
        "non-zero return code: sh: 1: cannot create /proc/sys/x: Read-only file system")
