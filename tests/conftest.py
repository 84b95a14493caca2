"""Fixtures every test folder may use: a private KFBOX_HOME, the machine's Docker engine, the
machine's inotify limits put back. Helpers to import are in tests/support."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ci import unreachable
from tests.support.cli import private_home

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")


@pytest.fixture
def kfbox_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private KFBOX_HOME (see private_home) for the test's kfbox calls."""
    home = private_home(tmp_path / "kfbox-home")
    monkeypatch.setenv("KFBOX_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def docker_client():
    """The machine's Docker engine (bin/run-tests provisions one); unreachable otherwise."""
    from kfbox.host import docker_engine

    ok, detail = docker_engine.reachable()
    if not ok:
        unreachable(f"no Docker engine: {detail} (run `bin/kfbox provision`)")
    return docker_engine.connect()


INOTIFY = Path("/proc/sys/fs/inotify")


@pytest.fixture
def host_inotify() -> Iterator[None]:
    """fs.inotify.* are not namespaced: the playbook raising them in a container raises them
    on the machine running the test. Put the machine's own values back afterwards."""
    before = {p: p.read_text() for p in INOTIFY.glob("max_user_*")}
    yield
    for path, value in before.items():
        if path.read_text() != value:
            path.write_text(value)
