"""`kfbox status`'s output, in a child process as a person runs it (its stdout a pipe, any
terminal width) against an engine that reports a fixed sandbox: every URL and token whole, the
kept workloads listed, an absent sandbox one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOKEN = "b77b2bb5afbbec351e9b5ed6f0578397d433e3e0170cb128"
LOGIN = f"http://127.0.0.1:18897/lab?token={TOKEN}"
SERVER = "kfbox-stat-run-1a2b3c4d-serve-digits-core-with-a-long-name"

# The child replaces the engine kfbox picks with one that reports STATE's sandbox, then runs
# the command as `kfbox` does.
CHILD = f"""
import sys
from kfbox import engines
from kfbox.engines.base import ComponentStatus, SandboxStatus, Workload

class Fake:
    def __init__(self, spec):
        self.spec = spec

    def status(self):
        if sys.argv[1] == "absent":
            return SandboxStatus(self.spec.name, "lite", "absent")
        return SandboxStatus(
            self.spec.name, "lite", "running",
            [ComponentStatus("jupyter", True, "running", "http://127.0.0.1:18897"),
             ComponentStatus("registry", True, "running", "http://127.0.0.1:18898"),
             ComponentStatus("store", True, "volume kfbox-stat-models")],
            facts={{"listen": "127.0.0.1"}},
            workloads=[Workload({SERVER!r}, "run-1a2b3c4d", "http://127.0.0.1:32768")],
        )

    def login_url(self, component):
        return {LOGIN!r} if component == "jupyter" else None

engines.get_engine = Fake
from kfbox.cli import main
main(sys.argv[2:])
"""


def status(tmp_path: Path, state: str, *args: str,
           columns: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = columns
    env["KFBOX_HOME"] = str(tmp_path / "home")
    return subprocess.run(
        [sys.executable, "-c", CHILD, state, "--name", "stat", "status", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )


@pytest.mark.parametrize("columns", ["40", None], ids=["40-columns", "piped"])
def test_login_url_and_workload_urls_are_whole_lines(tmp_path: Path, columns: str | None) -> None:
    shown = status(tmp_path, "running", "--show-token", columns=columns)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f"jupyter: {LOGIN}" in lines
    assert "registry: http://127.0.0.1:18898" in lines
    assert f"  {SERVER} (run-1a2b3c4d): http://127.0.0.1:32768" in lines


def test_tokens_stay_masked_without_show_token(tmp_path: Path) -> None:
    shown = status(tmp_path, "running", columns="40")
    assert shown.returncode == 0, shown.stderr
    assert TOKEN not in shown.stdout
    assert "jupyter: http://127.0.0.1:18897" in shown.stdout.splitlines()
    assert "jupyter asks for its token: `kfbox status --show-token` shows the URL with it" in (
        shown.stdout.splitlines())


def test_json_lists_the_kept_workloads(tmp_path: Path) -> None:
    shown = status(tmp_path, "running", "--json", "--show-token", columns="40")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["workloads"] == [
        {"name": SERVER, "run": "run-1a2b3c4d", "url": "http://127.0.0.1:32768"}
    ]
    assert {c["name"]: c["url"] for c in data["components"]}["jupyter"] == LOGIN


def test_an_absent_sandbox_is_one_line_and_fails(tmp_path: Path) -> None:
    shown = status(tmp_path, "absent", columns=None)
    assert shown.returncode == 1
    assert shown.stdout == "sandbox 'stat' (lite): absent\n"
