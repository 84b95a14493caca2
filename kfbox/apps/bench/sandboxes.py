"""Throwaway sandboxes for measuring (own names, free ports, the user's never touched), and the
image store emptied for a cold start. What their containers use: kfbox.host.usage."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket

import docker

from kfbox.host import paths
from kfbox.host.config import SandboxSpec, load_spec
from kfbox.host.docker_engine import LABEL
from kfbox.host.errors import KfboxError
from kfbox.host.images.base import IMAGE_LABEL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_spec(purpose: str = "bench", docker: str = "host") -> SandboxSpec:
    """A sandbox of its own, on free ports, so the user's sandboxes are never touched. In the
    host's Docker engine unless asked: the figures read each container's own cgroup there,
    which a rootless engine does not make (one cgroup holds the whole engine,
    kfbox/host/rootless_docker.py)."""
    return load_spec(None, {"name": f"{purpose}-{secrets.token_hex(3)}",
                            "ports.jupyter": free_port(), "ports.registry": free_port(),
                            "ports.tracking": free_port(),
                            "lite.docker": docker})


def clear_image_store(client: docker.DockerClient) -> None:
    """Remove every kfbox image and the download caches: the next `up` starts from nothing."""
    in_use = {c.image.id for c in client.containers.list(
        ignore_removed=True, all=True, filters={"label": LABEL})}
    # Labels are inherited: every image built FROM a kfbox image carries this one too.
    images = client.images.list(all=True, filters={"label": IMAGE_LABEL})
    if any(image.id in in_use for image in images):
        raise KfboxError(
            "--cold needs every kfbox sandbox down (their images are in use)",
            fix="run `kfbox down` for each sandbox, or bench without --cold",
        )
    # Newest first: an image built FROM another (a journey's, FROM the runtime) goes before
    # its parent, which the engine refuses to remove while a child exists.
    for image in sorted(images, key=lambda i: i.attrs.get("Created", ""), reverse=True):
        with contextlib.suppress(docker.errors.NotFound):
            client.images.remove(image.id, force=True)
    for kind in ("base", "wheels", "registry"):
        shutil.rmtree(paths.cache_dir(kind), ignore_errors=True)
