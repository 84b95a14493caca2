"""The host's Docker engine: connect, and say clearly how to get one when it is not there."""

from __future__ import annotations

import os

import docker
from docker.errors import DockerException

from kfbox.host.errors import PreflightError

LABEL = "kfbox.sandbox"
"""Every container, network, volume and image kfbox creates carries this label = sandbox name."""
COMPONENT_LABEL = "kfbox.component"
ROLE_LABEL = "kfbox.role"
"""`component` for the sandbox's services, `workload` for per-journey containers."""
RUN_LABEL = "kfbox.run"
"""The journey run a workload belongs to (lite: its platform's run id)."""


def address() -> str:
    """Where kfbox looks for the engine: DOCKER_HOST, or the default socket."""
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def unreachable_reason(exc: BaseException) -> str:
    """Why the engine did not answer, in words (docker-py's own text is a nested repr)."""
    text = str(exc)
    if "FileNotFoundError" in text or "No such file" in text:
        return f"no Docker engine is running (no socket at {address()})"
    if "ConnectionRefused" in text or "Connection refused" in text:
        return f"no Docker engine is running (nothing listens at {address()})"
    if "PermissionError" in text or "Permission denied" in text:
        return f"this user may not use the Docker engine at {address()}"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return f"the Docker engine at {address()} did not answer in time"
    return f"the Docker engine at {address()} did not answer"


def connect(timeout: int = 120) -> docker.DockerClient:
    """A client for the engine DOCKER_HOST names (or the default socket); PreflightError if none."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        raise PreflightError(
            unreachable_reason(exc),
            fix="run `kfbox provision` (or `kfbox up --provision`) to install and start one",
        ) from exc
    return client


def reachable() -> tuple[bool, str]:
    """(True, version) when an engine answers, else (False, why not, in words); never raises."""
    try:
        client = docker.from_env(timeout=10)
        return True, client.version().get("Version", "unknown")
    except DockerException as exc:
        return False, unreachable_reason(exc)


def describe(exc: DockerException) -> str:
    """A Docker error no step turned into a KfboxError, as one line: a lost connection in words,
    else the engine's own explanation."""
    text = str(exc)
    if any(mark in text for mark in ("Connection aborted", "Connection refused",
                                     "FileNotFoundError", "Read timed out")):
        return unreachable_reason(exc) + " — run `kfbox provision` to start it"
    explanation = getattr(exc, "explanation", None) or text.strip() or type(exc).__name__
    return "docker: " + str(explanation).splitlines()[0]
