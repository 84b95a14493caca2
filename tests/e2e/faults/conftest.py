"""Fault tests' fixtures: a Docker engine of the suite's own (tests/suite_engine.py: these tests
stop, kill and fill it, never the machine's), and on it a sandbox of its own (name, ports in its
spec file, KFBOX_HOME) that commands reach from child processes, which a test can start, read and
kill as a person would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from kfbox.host import docker_engine
from tests.support.ci import unreachable
from tests.support.cli import private_home
from tests.support.faults import Box
from tests.support.images import ensure_images
from tests.support.net import sandbox_ports
from tests.support.sandboxes import (
    ON_HOST_ENGINE,
    labelled,
    remove_labelled,
    sandbox_name,
    untag_registry,
)
from tests.support.suite_engine import EngineError, SuiteEngine, suite_engine


@pytest.hookimpl(tryfirst=True)  # before tests/e2e/conftest.py puts the machine check last
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The engine restart runs after every other test on the suite's engine: the restarted
    dockerd gets no address pools (SuiteEngine.command says why), so a network made after it
    would fall outside the engine's firewall chain."""
    items.sort(key=lambda item: item.path.name == "test_engine_restart.py")  # stable


@pytest.fixture(scope="session")
def own_engine() -> Iterator[SuiteEngine]:
    """The suite's own engine, once a session, with the images a sandbox needs copied from the
    machine's engine (built there first if missing, as every other e2e test would); removed with
    its data root when the session ends."""
    machine_host = docker_engine.address()
    ok, detail = docker_engine.reachable()
    if not ok:
        unreachable(f"no Docker engine to copy images from: {detail} (run `kfbox provision`)")
    tags = ensure_images()
    try:
        with suite_engine() as engine:
            engine.copy_images(machine_host, tags)
            yield engine
    except EngineError as exc:
        unreachable(str(exc))


@pytest.fixture(scope="session")
def docker_client(own_engine: SuiteEngine) -> docker.DockerClient:
    """Here, the suite's own engine (outside tests/e2e/faults: the machine's)."""
    return own_engine.client()


@pytest.fixture(autouse=True)
def on_own_engine(own_engine: SuiteEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """kfbox in the test's own process (and its children) uses the suite's engine."""
    monkeypatch.setenv("DOCKER_HOST", own_engine.host)


def make_box(root: Path, engine: SuiteEngine) -> Box:
    name = sandbox_name("fault")
    ports = sandbox_ports()
    config = root / "kfbox.yaml"
    config.write_text(yaml.safe_dump({"name": name, "ports": ports, **ON_HOST_ENGINE}))
    return Box(name, private_home(root / "home"), config, ports, engine.host)


def clean_up(client: docker.DockerClient, box: Box) -> None:
    remove_labelled(client, box.name)
    untag_registry(client, box.ports["registry"])


@pytest.fixture
def box(
    docker_client: docker.DockerClient, own_engine: SuiteEngine, tmp_path: Path
) -> Iterator[Box]:
    """A sandbox name and ports no one uses, not brought up; everything it leaves is removed
    afterwards (a test asserts first that `down` left nothing)."""
    made = make_box(tmp_path, own_engine)
    try:
        yield made
    finally:
        clean_up(docker_client, made)


@pytest.fixture(scope="module")
def running_box(
    docker_client: docker.DockerClient, own_engine: SuiteEngine,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Box]:
    """One sandbox up for the module, taken down (and checked empty) at its end."""
    made = make_box(tmp_path_factory.mktemp("fault-module"), own_engine)
    try:
        up = made.kfbox("up")
        assert up.returncode == 0, up.stdout + up.stderr
        yield made
        down = made.kfbox("down")
        assert down.returncode == 0, down.stderr
        assert labelled(docker_client, made.name) == []
    finally:
        clean_up(docker_client, made)
