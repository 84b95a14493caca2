"""End-to-end fixtures: a real Docker engine (required under CI=true) and throwaway sandboxes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from kfbox.scenarios.scenario import SCENARIOS_DIR
from tests.support import machine
from tests.support.sandboxes import ON_HOST_ENGINE, remove_labelled, sandbox_name


@pytest.fixture
def fresh_name(docker_client: docker.DockerClient) -> Iterator[str]:
    """A sandbox name no one uses; anything left with its label is removed afterwards."""
    name = sandbox_name()
    yield name
    remove_labelled(docker_client, name)


@pytest.fixture
def on_host_engine(tmp_path: Path) -> list[str]:
    """`--config` for a sandbox in the host's Docker engine (tests/support/sandboxes.py)."""
    config = tmp_path / "on-host-engine.yaml"
    config.write_text(yaml.safe_dump(ON_HOST_ENGINE))
    return ["--config", str(config)]


@pytest.fixture
def digits_copy(tmp_path: Path) -> Path:
    """A copy of the shipped digits scenario to break one thing in (the folder keeps the
    scenario's name, as the loader requires)."""
    folder = tmp_path / "scenario" / "digits"
    shutil.copytree(SCENARIOS_DIR / "digits", folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _is_machine_check(item: pytest.Item) -> bool:
    return item.path.name == "test_machine_untouched.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The machine check (test_machine_untouched.py) runs after every other test."""
    items.sort(key=_is_machine_check)  # stable: the others keep their order


def pytest_collection_finish(session: pytest.Session) -> None:
    """Before any test runs, when the machine check will: the machine as the person left it,
    with a container of theirs running (tests/support/machine.py), or as it was before other
    sessions started (bin/run-tests runs the check in a session of its own, after them)."""
    if any(_is_machine_check(item) for item in session.items):
        session.config.stash[machine.BEFORE] = machine.before_session()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The guard goes even when the check did not run to its end."""
    before = session.config.stash.get(machine.BEFORE, None)
    if isinstance(before, machine.Snapshot):
        machine.remove_guard(before)
