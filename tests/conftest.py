"""Fixtures every test folder may use: a private KFBOX_HOME, the machine's Docker engine, the
machine's inotify limits put back, the escape attempts' canary and marker. Helpers to import are
in tests/support."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ci import unreachable
from tests.support.cli import private_home
from tests.support.escape_table import Canary

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


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    """A TCP listener on the host's 127.0.0.1 only: no workload may ever reach it."""
    listener = Canary()
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def marker() -> Iterator[str]:
    """A host process with a unique word in its command line: no workload may see it."""
    word = f"kfbox-host-marker-{secrets.token_hex(3)}"
    # sleep itself, named `word` (argv[0]): one process, nothing forked to leave behind
    proc = subprocess.Popen([word, "3600"], executable="/bin/sleep",
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield word
    proc.kill()
    proc.wait()


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
