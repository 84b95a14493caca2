"""Shared test helpers: isolated KFBOX_HOME, free ports, and the kfbox CLI as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unreachable(message: str) -> NoReturn:
    """A test of kfbox itself that cannot reach what it needs (a Docker engine, a browser, a
    tool) fails under CI=true and skips, saying why, elsewhere."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kfbox_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """`kfbox ARGS` in a child process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from kfbox.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def private_home(home: Path) -> Path:
    """Make `home` a private KFBOX_HOME for state; the image and wheel caches stay shared (they
    are big and keyed by their inputs, so sharing them cannot change a result)."""
    shared_cache = Path(os.environ.get("KFBOX_HOME", Path.home() / ".kfbox")) / "cache"
    home.mkdir(parents=True, exist_ok=True)
    shared_cache.mkdir(parents=True, exist_ok=True)
    (home / "cache").symlink_to(shared_cache)
    return home


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
