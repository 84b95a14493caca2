"""The host playbook, run for real by ansible-runner against a fresh Debian container."""

from __future__ import annotations

import docker
import pytest

from kfbox.host.progress import quiet_reporter
from kfbox.host.provision.runner import Target, run_playbook

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INSTALL = "Install the Docker engine (Debian's docker.io)"
START = "Start dockerd directly (no systemd)"


def sh(engine: docker.DockerClient, name: str, command: str) -> tuple[int, str]:
    code, output = engine.containers.get(name).exec_run(["/bin/sh", "-c", command])
    return code, output.decode().strip()


def test_second_run_changes_nothing(engine, debian_target: Target, tmp_path, record_property):
    name = debian_target.host
    reporter = quiet_reporter()

    first = run_playbook(reporter, debian_target, gpu=False, private_data_dir=tmp_path)

    assert first.ok
    assert {INSTALL, START} <= {t.task for t in first.changed_tasks()}
    assert [t.name for t in reporter.timings] == ["Provision: docker engine", "Provision: inotify"]
    assert "nvidia_toolkit" not in first.by_role()
    assert sh(engine, name, "docker info --format '{{.ServerVersion}}'")[0] == 0
    assert sh(engine, name, "cat /etc/sysctl.d/90-kfbox-inotify.conf")[1].splitlines()[1:] == [
        "fs.inotify.max_user_watches = 524288", "fs.inotify.max_user_instances = 512"]
    watches = int(sh(engine, name, "cat /proc/sys/fs/inotify/max_user_watches")[1])
    assert watches >= 524288

    second = run_playbook(quiet_reporter(), debian_target, gpu=False, private_data_dir=tmp_path)

    assert second.changed == 0, [t.task for t in second.changed_tasks()]
    assert second.changed_tasks() == []
    assert sh(engine, name, "pgrep -cx dockerd")[1] == "1"  # never a second engine
    record_property("first_run", f"{first.seconds:.1f}s changed={first.changed}")
    record_property("second_run", f"{second.seconds:.1f}s changed={second.changed}")
    print(f"first run {first.seconds:.1f}s changed={first.changed}; "
          f"second run {second.seconds:.1f}s changed={second.changed}")


    # Without systemd nothing restarts dockerd (after a reboot, say): the next run starts it,
    # once, and changes nothing else.
    code, _ = sh(engine, name, "kill $(cat /var/run/docker.pid) && "
                               "while pgrep -x dockerd >/dev/null; do sleep 0.2; done")
    assert code == 0
    third = run_playbook(quiet_reporter(), debian_target, gpu=False, private_data_dir=tmp_path)
    assert [t.task for t in third.changed_tasks()] == [START]
    assert sh(engine, name, "docker info --format '{{.ServerVersion}}'")[0] == 0
