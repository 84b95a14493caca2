"""Throwaway sandboxes for the tests: names, what is labelled with them, removing it, their runs."""

from __future__ import annotations

import contextlib
import json
import secrets
from pathlib import Path
from typing import Any

import docker
from docker.errors import NotFound

from kfbox.harness.plugin import RECORD_FILE
from kfbox.harness.runner import workspace_for
from kfbox.host.docker_engine import LABEL
from tests.support.net import sandbox_ports

ON_HOST_ENGINE: dict[str, Any] = {"lite": {"docker": "host"}}
"""kfbox.yaml's setting for a sandbox in the host's Docker engine rather than the default, a
rootless engine of its own: for the tests of what kfbox does whatever the engine (a failing
step, a lifecycle, a fault done to the engine), which inspect or break the sandbox's containers
from the host, and which a rootless engine's minute of start-up would only slow. The default's
own tests: tests/e2e/test_journey_lite.py and test_workshop.py."""


def sandbox_name(prefix: str = "e2e") -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def labelled(client: docker.DockerClient, name: str) -> list[str]:
    """Everything in the engine still labelled with sandbox `name`."""
    filters = {"label": [f"{LABEL}={name}"]}
    return (
        [f"container {c.name}" for c in client.containers.list(
            ignore_removed=True, all=True, filters=filters)]
        + [f"network {n.name}" for n in client.networks.list(filters=filters)]
        + [f"volume {v.name}" for v in client.volumes.list(filters=filters)]
    )


def spec_args(name: str) -> list[str]:
    return ["--name", name]


def remove_labelled(client: docker.DockerClient, name: str) -> None:
    """Remove every container, network, volume and image labelled with sandbox `name` (its
    journeys' images: `down` leaves them, and each run tags one)."""
    filters = {"label": [f"{LABEL}={name}"]}
    for container in client.containers.list(ignore_removed=True, all=True, filters=filters):
        container.remove(force=True)
    for network in client.networks.list(filters=filters):
        network.remove()
    for volume in client.volumes.list(filters=filters):
        volume.remove(force=True)
    for image in client.images.list(filters=filters):
        with contextlib.suppress(NotFound):  # a layer of one removed just before
            client.images.remove(image.id, force=True)


def untag_registry(client: docker.DockerClient, registry_port: int) -> None:
    """Drop the local tags naming a sandbox registry (the runtime tag `up` pushes from)."""
    prefix = f"127.0.0.1:{registry_port}/"
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(prefix):
                with contextlib.suppress(NotFound):
                    client.images.remove(tag)


def free_ports_args() -> list[str]:
    return [arg for name, port in sandbox_ports().items()
            for arg in ("--port", f"{name}={port}")]


def run_folder(out: Path) -> Path:
    """The one run (or bundle) folder a `kfbox test`/`certify` made under `out`, leaving out
    its `.workspace` sibling (the run's own files)."""
    [folder] = [p for p in out.iterdir() if p.is_dir() and not p.name.endswith(".workspace")]
    return folder


def run_record(run: Path) -> dict[str, Any]:
    """What the run's plugin recorded (kept beside the run folder, with the run's own files)."""
    return json.loads((workspace_for(run) / RECORD_FILE).read_text())
