"""The Docker engine stopped and started again under a running sandbox: `status` says in one line
that the engine is unreachable; once it is back (`kfbox provision` starts it), `up` finds every
component and the data in the volumes (a notebook, a model file, the registry's images) kept.

It stops the machine's one Docker engine: nothing else may run beside it (CI runs the suite in
one process, one test at a time)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from kfbox.engines.lite.components import volume_name
from kfbox.engines.platform import MODEL_STORE_MOUNT
from kfbox.host import docker_engine
from kfbox.host.docker_engine import LABEL
from kfbox.host.images.base import base_tag
from tests.conftest import kfbox_cli
from tests.e2e.faults.conftest import Box

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
PIDFILE = "/var/run/docker.pid"
"""Where the host playbook's dockerd (no systemd) keeps its pid: docker_engine role defaults."""


def stop_engine() -> None:
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "stop", "docker.socket", "docker"], check=True)
        return
    subprocess.run(["start-stop-daemon", "--stop", "--pidfile", PIDFILE, "--retry", "30"],
                   check=True)


@pytest.fixture
def engine_back() -> Iterator[None]:
    """Whatever happens in the test, the engine is running again after it."""
    yield
    if not docker_engine.reachable()[0]:
        done = kfbox_cli("provision", timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr


def keep_data(box: Box, client: docker.DockerClient) -> None:
    notebook = {"type": "notebook", "content": {"cells": [], "metadata": {}, "nbformat": 4,
                                                "nbformat_minor": 5}}
    put = requests.put(f"http://127.0.0.1:{box.ports['jupyter']}/api/contents/kept.ipynb",
                       json=notebook, headers={"Authorization": f"token {box.token()}"},
                       timeout=10)
    assert put.status_code in (200, 201), put.text
    client.containers.run(base_tag(), ["sh", "-c", f"echo weights > {MODEL_STORE_MOUNT}/kept"],
                          volumes={volume_name(box.name, "models"): {"bind": MODEL_STORE_MOUNT,
                                                                      "mode": "rw"}},
                          labels={LABEL: box.name}, remove=True)


def test_the_sandbox_outlives_an_engine_restart(running_box: Box, engine_back) -> None:
    client = docker_engine.connect()
    keep_data(running_box, client)
    catalog = requests.get(f"http://127.0.0.1:{running_box.ports['registry']}/v2/_catalog",
                           timeout=10).json()["repositories"]
    assert catalog, "the registry holds the seeded runtime"

    stop_engine()
    status = running_box.kfbox("status")
    assert status.returncode == 3
    lines = status.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in status.stderr, status.stderr
    assert lines[0].startswith("error: no Docker engine is running")
    assert lines[0].endswith("run `kfbox provision` (or `kfbox up --provision`) to install and "
                             "start one")

    started = kfbox_cli("provision", timeout=300)
    assert started.returncode == 0, started.stdout + started.stderr
    deadline = time.monotonic() + 120
    up = running_box.kfbox("up")
    while up.returncode != 0 and time.monotonic() < deadline:  # components still restarting
        time.sleep(2)
        up = running_box.kfbox("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert running_box.running()

    assert running_box.jupyter("/api/contents/kept.ipynb").status_code == 200
    client = docker_engine.connect()
    store = volume_name(running_box.name, "models")
    kept = client.containers.run(
        base_tag(), ["cat", f"{MODEL_STORE_MOUNT}/kept"], remove=True,
        labels={LABEL: running_box.name},
        volumes={store: {"bind": MODEL_STORE_MOUNT, "mode": "ro"}})
    assert kept.decode().strip() == "weights"
    after = requests.get(f"http://127.0.0.1:{running_box.ports['registry']}/v2/_catalog",
                         timeout=10).json()["repositories"]
    assert after == catalog
