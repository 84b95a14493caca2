"""Pushes to a sandbox's registry, for `up`'s seed and a journey's build alike, failing with
the registry's real cause: on a full disk the engine only reports the registry's HTTP 500, and
the registry's own log says "no space left on device"."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import docker
from docker.errors import APIError, DockerException

from kfbox.engines.lite.components import container_name, volume_name
from kfbox.host.diskspace import disk_full, is_disk_full
from kfbox.host.errors import KfboxError

LOG_LINES = 50
"""The registry's last lines read for the cause: a refused upload is logged as it happens."""


@dataclass(frozen=True)
class Pushed:
    """A finished push: the manifest's digest, and how many layers the engine sent and how
    many the registry already had (the engine's own words for each)."""

    digest: str
    sent: int
    there: int


def push(
    client: docker.DockerClient,
    sandbox: str,
    repository: str,
    tag: str,
    work: str,
    progress: Callable[[str], None] | None = None,
) -> Pushed:
    """Push REPOSITORY:TAG to the sandbox registry. `work` names the push in an error
    ("seeding the sandbox registry"); `progress` gets the engine's bytes."""
    started = int(time.time())
    digest = ""
    layers: dict[str, str] = {}
    try:
        for event in client.images.push(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise failure(client, sandbox, work, event["error"], started)
            status = event.get("status", "")
            if progress and status == "Pushing" and event.get("progress"):
                progress(event["progress"].split("]")[-1].strip())
            # each layer ends "Pushed", "Layer already exists" or "Mounted from REPOSITORY"
            # (moby v20.10.24, distribution/push_v2.go)
            if status in ("Pushed", "Layer already exists") or status.startswith("Mounted from"):
                layers[event.get("id", "")] = status
            digest = event.get("aux", {}).get("Digest", digest)
    except APIError as exc:
        raise failure(client, sandbox, work, str(exc.explanation), started) from exc
    if not digest:
        raise KfboxError(f"{work}: the registry returned no digest for {repository}:{tag}")
    sent = sum(status == "Pushed" for status in layers.values())
    return Pushed(digest, sent, len(layers) - sent)


def failure(
    client: docker.DockerClient, sandbox: str, work: str, error: str, since: int
) -> KfboxError:
    """The error to show for a refused push: a full disk where the registry stores images
    (said by the engine or only by the registry's log), else the engine's words."""
    if is_disk_full(error) or is_disk_full(registry_log(client, sandbox, since)):
        return disk_full(work, registry_storage(client, sandbox))
    return KfboxError(f"{work} failed: {error}")


def registry_log(client: docker.DockerClient, sandbox: str, since: int) -> str:
    try:
        container = client.containers.get(container_name(sandbox, "registry"))
        return container.logs(since=since, tail=LOG_LINES).decode(errors="replace")
    except DockerException:  # the registry itself gone: the engine's words are all there is
        return ""


def registry_storage(client: docker.DockerClient, sandbox: str) -> str:
    """Where the registry's volume lives on this host (under Docker's data-root unless the
    volume was made on another filesystem)."""
    name = volume_name(sandbox, "registry")
    try:
        return client.volumes.get(name).attrs.get("Mountpoint") or f"volume {name}"
    except DockerException:
        return f"volume {name}"
