"""Offline bundle fixtures: the real bundle `kfbox bundle` writes (once per session), small bundles
packed by the same code for the bad-input cases, and machines with no network: containers from
kfbox's base image with Python and everything else past debootstrap's minbase purged."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.support.cli import kfbox_cli, private_home
from tests.support.offline import OfflineMachine, WrittenBundle
from tests.support.sandboxes import remove_labelled

# Records each connection's first line and answers 503: a fetch attempt fails and is seen.


@pytest.fixture(scope="session")
def real_bundle(tmp_path_factory: pytest.TempPathFactory,
                docker_client: docker.DockerClient) -> WrittenBundle:
    """`kfbox bundle` of this checkout, through the CLI, as an instructor runs it."""
    home = private_home(tmp_path_factory.mktemp("bundle-home") / "kfbox")
    out = tmp_path_factory.mktemp("bundle")
    started = time.monotonic()
    done = kfbox_cli("bundle", "-o", str(out), env={"KFBOX_HOME": str(home)})
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = out.glob("*.tar")
    return WrittenBundle(path, done.stdout, done.stderr, seconds)


@pytest.fixture
def machine_label(request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")
    return f"offline-{name[:24]}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def offline_machine(docker_client: docker.DockerClient,
                    machine_label: str) -> Iterator[Callable[..., OfflineMachine]]:
    """Makes OfflineMachines for the test; all of them, and their volumes, go afterwards."""
    made: list[str] = []

    def make(bundles: Path, **options) -> OfflineMachine:
        label = f"{machine_label}-{len(made)}"
        made.append(label)  # before it exists: a failed start is removed too
        return OfflineMachine(docker_client, label, bundles, **options)

    yield make
    for label in made:
        remove_labelled(docker_client, label)
