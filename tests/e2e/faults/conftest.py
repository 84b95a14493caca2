"""Fault tests' fixtures: a sandbox of its own (name, ports in its spec file, KFBOX_HOME) that
commands reach from child processes, which a test can start, read and kill as a person would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import requests
import yaml

from tests.conftest import free_port, kfbox_cli, private_home
from tests.e2e.conftest import labelled, remove_labelled, sandbox_name, untag_registry


@dataclass
class Box:
    """A sandbox under test: its name, its private KFBOX_HOME and its spec file."""

    name: str
    home: Path
    config: Path
    ports: dict[str, int]

    def env(self) -> dict[str, str]:
        return {"KFBOX_HOME": str(self.home)}

    def kfbox(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return kfbox_cli("--config", str(self.config), *args, env=self.env(), timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`kfbox ARGS` running in the background, its output (both streams) readable."""
        return subprocess.Popen(
            [sys.executable, "-c", "from kfbox.cli import main; main()",
             "--config", str(self.config), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **self.env()},
        )

    @property
    def state(self) -> Path:
        return self.home / "sandboxes" / self.name

    def token(self) -> str:
        return (self.state / "jupyter-token").read_text().strip()

    def jupyter(self, path: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.ports['jupyter']}{path}", timeout=10,
                            headers={"Authorization": f"token {self.token()}"})

    def running(self) -> bool:
        done = self.kfbox("status", "--json")
        return done.returncode == 0 and json.loads(done.stdout)["state"] == "running"


def read_until(process: subprocess.Popen[str], text: str, timeout_s: float = 600) -> list[str]:
    """The lines `process` printed up to the first holding `text` (it goes on running)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line.rstrip("\n"))
        if text in line:
            return seen
        assert time.monotonic() < deadline, f"no {text!r} within {timeout_s}s:\n" + "\n".join(seen)
    raise AssertionError(f"it ended without printing {text!r}:\n" + "\n".join(seen))


def finish(process: subprocess.Popen[str], timeout_s: float = 600) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout_s)
    return process.returncode, output


def interrupt(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)


def make_box(root: Path) -> Box:
    name = sandbox_name("fault")
    ports = {"jupyter": free_port(), "registry": free_port()}
    config = root / "kfbox.yaml"
    config.write_text(yaml.safe_dump({"name": name, "ports": ports}))
    return Box(name, private_home(root / "home"), config, ports)


def clean_up(client: docker.DockerClient, box: Box) -> None:
    remove_labelled(client, box.name)
    untag_registry(client, box.ports["registry"])


@pytest.fixture
def box(docker_client: docker.DockerClient, tmp_path: Path) -> Iterator[Box]:
    """A sandbox name and ports no one uses, not brought up; everything it leaves is removed
    afterwards (a test asserts first that `down` left nothing)."""
    made = make_box(tmp_path)
    try:
        yield made
    finally:
        clean_up(docker_client, made)


@pytest.fixture(scope="module")
def running_box(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Box]:
    """One sandbox up for the module, taken down (and checked empty) at its end."""
    made = make_box(tmp_path_factory.mktemp("fault-module"))
    try:
        up = made.kfbox("up")
        assert up.returncode == 0, up.stdout + up.stderr
        yield made
        down = made.kfbox("down")
        assert down.returncode == 0, down.stderr
        assert labelled(docker_client, made.name) == []
    finally:
        clean_up(docker_client, made)
