"""End-to-end fixtures: a real Docker engine (required under CI=true) and throwaway sandboxes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import docker
import pytest

from kfbox.fixtures.plugin import unreachable
from kfbox.sandbox import docker_engine
from kfbox.sandbox.config import load_spec
from kfbox.sandbox.docker_engine import LABEL
from tests.conftest import free_port


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    ok, detail = docker_engine.reachable()
    if not ok:
        unreachable(f"no Docker engine: {detail} (run `bin/kfbox provision`)")
    return docker_engine.connect()


def sandbox_name(prefix: str = "e2e") -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def labelled(client: docker.DockerClient, name: str) -> list[str]:
    """Everything in the engine still labelled with sandbox `name`."""
    filters = {"label": [f"{LABEL}={name}"]}
    return (
        [f"container {c.name}" for c in client.containers.list(all=True, filters=filters)]
        + [f"network {n.name}" for n in client.networks.list(filters=filters)]
        + [f"volume {v.name}" for v in client.volumes.list(filters=filters)]
    )


def spec_args(name: str) -> list[str]:
    return ["--name", name]


@pytest.fixture
def fresh_name(docker_client: docker.DockerClient) -> Iterator[str]:
    """A sandbox name no one uses; anything left with its label is removed afterwards."""
    name = sandbox_name()
    yield name
    filters = {"label": [f"{LABEL}={name}"]}
    for container in docker_client.containers.list(all=True, filters=filters):
        container.remove(force=True)
    for network in docker_client.networks.list(filters=filters):
        network.remove()
    for volume in docker_client.volumes.list(filters=filters):
        volume.remove(force=True)


def free_ports_args() -> list[str]:
    return ["--port", f"jupyter={free_port()}", "--port", f"registry={free_port()}"]


def spec_for(name: str, jupyter: int, registry: int):
    return load_spec(None, {"name": name, "ports.jupyter": jupyter, "ports.registry": registry})
