"""A sandbox the fault tests break (Box), and the kfbox commands they start, read, wait for
and interrupt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.cli import kfbox_cli


@dataclass
class Box:
    """A sandbox under test: its name, its private KFBOX_HOME, its spec file and its engine."""

    name: str
    home: Path
    config: Path
    ports: dict[str, int]
    docker_host: str

    def env(self) -> dict[str, str]:
        return {"KFBOX_HOME": str(self.home), "DOCKER_HOST": self.docker_host}

    def kfbox(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return kfbox_cli("--config", str(self.config), *args, env=self.env(), timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`kfbox ARGS` running in the background, its output (both streams) readable, and
        Ctrl-C reaching it as from a terminal: a suite started in the background by a shell
        without job control ignores SIGINT, and its children would inherit that."""
        return subprocess.Popen(
            [sys.executable, "-c", "from kfbox.cli import run; run()",
             "--config", str(self.config), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **self.env()}, preexec_fn=_sigint_as_from_a_terminal,
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


def _sigint_as_from_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
