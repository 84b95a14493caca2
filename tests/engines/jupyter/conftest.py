"""Real Jupyter servers for the client tests: the venv's `jupyter server` on a free local port,
one with a token (as the sandbox runs it), one as Kubeflow's notebook images run it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.net import free_port
from tests.support.processes import stop, wait_until_answers


@dataclass
class JupyterServer:
    url: str
    token: str | None
    root: Path
    """The server's root_dir: what the contents API serves."""

    def kernels(self) -> list[dict]:
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        return requests.get(f"{self.url}/api/kernels", headers=headers, timeout=10).json()


def _serve(
    tmp_path_factory: pytest.TempPathFactory, token: str | None, *args: str, prefix: str = ""
) -> Iterator[JupyterServer]:
    root = tmp_path_factory.mktemp("jupyter-root")
    log = tmp_path_factory.mktemp("jupyter-log") / "server.log"
    port = free_port()
    jupyter = Path(sys.executable).parent / "jupyter"
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_TOKEN"}
    if token is not None:
        # The token goes in the environment, not argv, as the sandbox's notebook server gets it.
        env["JUPYTER_TOKEN"] = token
    with log.open("w") as out:
        # Its own session: stopping the group takes any kernel it left with it.
        proc = subprocess.Popen(
            [str(jupyter), "server", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={port}", f"--ServerApp.root_dir={root}", *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = JupyterServer(f"http://127.0.0.1:{port}{prefix}", token, root)
    try:
        wait_until_answers(proc, f"{server.url}/api/status", log)
        yield server
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    yield from _serve(tmp_path_factory, secrets.token_hex(16))


@pytest.fixture(scope="session")
def kubeflow_jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """No token (the cluster's mesh authenticates) and served under NB_PREFIX."""
    prefix = "/notebook/ns/nb"
    yield from _serve(
        tmp_path_factory, None, "--IdentityProvider.token=", "--ServerApp.password=",
        "--ServerApp.allow_origin=*", f"--ServerApp.base_url={prefix}/", prefix=prefix,
    )
