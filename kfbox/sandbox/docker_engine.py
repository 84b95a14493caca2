"""The host's Docker engine: connect, and say clearly how to get one when it is not there."""

from __future__ import annotations

import os

import docker
from docker.errors import DockerException

from kfbox.sandbox.errors import PreflightError

LABEL = "kfbox.sandbox"
"""Every container, network, volume and image kfbox creates carries this label = sandbox name."""
COMPONENT_LABEL = "kfbox.component"
ROLE_LABEL = "kfbox.role"
"""`component` for the sandbox's services, `workload` for per-journey containers."""


def connect(timeout: int = 120) -> docker.DockerClient:
    """A client for the engine DOCKER_HOST names (or the default socket); PreflightError if none."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise PreflightError(
            f"no Docker engine answers at {where}",
            fix="run `kfbox provision` (or `kfbox up --provision`) to install and start one",
        ) from exc
    return client


def reachable() -> tuple[bool, str]:
    """(True, version) when an engine answers, else (False, reason); never raises."""
    try:
        client = docker.from_env(timeout=10)
        return True, client.version().get("Version", "unknown")
    except DockerException as exc:
        return False, str(exc).splitlines()[0][:160]
