"""The Docker engine stopped and started again under a running sandbox: `status` says in one line
that the engine is unreachable; once it is back, `up` finds every component and the data in the
volumes (a notebook, a model file, the registry's images) kept.

The engine stopped is the suite's own (tests/suite_engine.py), by its own dockerd's pid, and
started again as that same engine (its data root, socket and bridge): the machine's engine and
whatever else runs in it go on untouched."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest
import requests

from kfbox.engines.lite.components import volume_name
from kfbox.engines.platform import MODEL_STORE_MOUNT
from kfbox.host.docker_engine import LABEL
from kfbox.host.images.base import base_tag
from tests.support.faults import Box
from tests.support.suite_engine import SuiteEngine

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


@pytest.fixture
def engine_back(own_engine: SuiteEngine) -> Iterator[SuiteEngine]:
    """Whatever happens in the test, the suite's engine is running again after it."""
    yield own_engine
    own_engine.start()


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


def test_the_sandbox_outlives_an_engine_restart(
    running_box: Box, engine_back: SuiteEngine
) -> None:
    engine = engine_back
    client = engine.client()
    keep_data(running_box, client)
    catalog = requests.get(f"http://127.0.0.1:{running_box.ports['registry']}/v2/_catalog",
                           timeout=10).json()["repositories"]
    assert catalog, "the registry holds the seeded runtime"

    engine.stop()
    assert not engine.running()
    status = running_box.kfbox("status")
    assert status.returncode == 3
    lines = status.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in status.stderr, status.stderr
    assert lines[0].startswith("error: no Docker engine is running")
    assert lines[0].endswith("run `kfbox provision` (or `kfbox up --provision`) to install and "
                             "start one")

    engine.start()  # as `kfbox provision` starts the machine's
    deadline = time.monotonic() + 120
    up = running_box.kfbox("up")
    while up.returncode != 0 and time.monotonic() < deadline:  # components still restarting
        time.sleep(2)
        up = running_box.kfbox("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert running_box.running()

    assert running_box.jupyter("/api/contents/kept.ipynb").status_code == 200
    client = engine.client()
    store = volume_name(running_box.name, "models")
    kept = client.containers.run(
        base_tag(), ["cat", f"{MODEL_STORE_MOUNT}/kept"], remove=True,
        labels={LABEL: running_box.name},
        volumes={store: {"bind": MODEL_STORE_MOUNT, "mode": "ro"}})
    assert kept.decode().strip() == "weights"
    after = requests.get(f"http://127.0.0.1:{running_box.ports['registry']}/v2/_catalog",
                         timeout=10).json()["repositories"]
    assert after == catalog
