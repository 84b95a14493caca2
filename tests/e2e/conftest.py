"""End-to-end fixtures: a real Docker engine (required under CI=true) and throwaway sandboxes."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import NotFound

from kfbox.harness.plugin import RECORD_FILE
from kfbox.harness.runner import workspace_for
from kfbox.host.config import load_spec
from kfbox.host.docker_engine import LABEL
from kfbox.scenarios.scenario import SCENARIOS_DIR
from tests.conftest import free_port
from tests.e2e import machine


def sandbox_name(prefix: str = "e2e") -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def labelled(client: docker.DockerClient, name: str) -> list[str]:
    """Everything in the engine still labelled with sandbox `name`."""
    filters = {"label": [f"{LABEL}={name}"]}
    return (
        [f"container {c.name}" for c in client.containers.list(all=True, filters=filters)]
        + [f"network {n.name}" for n in client.networks.list(filters=filters)]
        + [f"volume {v.name}" for v in client.volumes.list(filters=filters)]
    )


def spec_args(name: str) -> list[str]:
    return ["--name", name]


@pytest.fixture
def fresh_name(docker_client: docker.DockerClient) -> Iterator[str]:
    """A sandbox name no one uses; anything left with its label is removed afterwards."""
    name = sandbox_name()
    yield name
    remove_labelled(docker_client, name)


def remove_labelled(client: docker.DockerClient, name: str) -> None:
    """Remove every container, network, volume and image labelled with sandbox `name` (its
    journeys' images: `down` leaves them, and each run tags one)."""
    filters = {"label": [f"{LABEL}={name}"]}
    for container in client.containers.list(all=True, filters=filters):
        container.remove(force=True)
    for network in client.networks.list(filters=filters):
        network.remove()
    for volume in client.volumes.list(filters=filters):
        volume.remove(force=True)
    for image in client.images.list(filters=filters):
        with contextlib.suppress(NotFound):  # a layer of one removed just before
            client.images.remove(image.id, force=True)


def untag_registry(client: docker.DockerClient, registry_port: int) -> None:
    """Drop the local tags naming a sandbox registry (the runtime tag `up` pushes from)."""
    prefix = f"127.0.0.1:{registry_port}/"
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(prefix):
                with contextlib.suppress(NotFound):
                    client.images.remove(tag)


def free_ports_args() -> list[str]:
    return ["--port", f"jupyter={free_port()}", "--port", f"registry={free_port()}"]


def spec_for(name: str, jupyter: int, registry: int):
    return load_spec(None, {"name": name, "ports.jupyter": jupyter, "ports.registry": registry})


@pytest.fixture
def digits_copy(tmp_path: Path) -> Path:
    """A copy of the shipped digits scenario to break one thing in (the folder keeps the
    scenario's name, as the loader requires)."""
    folder = tmp_path / "scenario" / "digits"
    shutil.copytree(SCENARIOS_DIR / "digits", folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def run_folder(out: Path) -> Path:
    """The one run (or bundle) folder a `kfbox test`/`certify` made under `out`, leaving out
    its `.workspace` sibling (the run's own files)."""
    [folder] = [p for p in out.iterdir() if p.is_dir() and not p.name.endswith(".workspace")]
    return folder


def run_record(run: Path) -> dict[str, Any]:
    """What the run's plugin recorded (kept beside the run folder, with the run's own files)."""
    return json.loads((workspace_for(run) / RECORD_FILE).read_text())


def _is_machine_check(item: pytest.Item) -> bool:
    return item.path.name == "test_machine_untouched.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The machine check (test_machine_untouched.py) runs after every other test."""
    items.sort(key=_is_machine_check)  # stable: the others keep their order


def pytest_collection_finish(session: pytest.Session) -> None:
    """Before any test runs, when the machine check will: the machine as the person left it,
    with a container of theirs running (tests/e2e/machine.py)."""
    if any(_is_machine_check(item) for item in session.items):
        session.config.stash[machine.BEFORE] = machine.take()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The guard goes even when the check did not run to its end."""
    before = session.config.stash.get(machine.BEFORE, None)
    if isinstance(before, machine.Snapshot):
        machine.remove_guard(before)
