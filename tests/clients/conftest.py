"""A real Jupyter server for the client tests: the venv's `jupyter server` on a free local port."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.processes import stop, wait_until_answers


@dataclass
class JupyterServer:
    url: str
    token: str
    root: Path
    """The server's root_dir: what the contents API serves."""

    def kernels(self) -> list[dict]:
        headers = {"Authorization": f"token {self.token}"}
        return requests.get(f"{self.url}/api/kernels", headers=headers, timeout=10).json()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    root = tmp_path_factory.mktemp("jupyter-root")
    log = tmp_path_factory.mktemp("jupyter-log") / "server.log"
    port, token = _free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).parent / "jupyter"
    with log.open("w") as out:
        # The token goes in the environment, not argv, as the sandbox's notebook server gets it.
        # Its own session: stopping the group takes any kernel it left with it.
        proc = subprocess.Popen(
            [str(jupyter), "server", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={port}", f"--ServerApp.root_dir={root}"],
            env={**os.environ, "JUPYTER_TOKEN": token},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root)
    try:
        wait_until_answers(proc, f"{server.url}/api/status", log)
        yield server
    finally:
        stop(proc)
