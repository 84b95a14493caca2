"""Throwaway sandboxes for measuring (own names, free ports, the user's never touched), the image
store emptied for a cold start, and the memory the sandbox's containers hold, read from their
cgroups (resident memory, not page cache) so a sampler can follow short-lived workloads."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import docker

from kfbox.sandbox import paths
from kfbox.sandbox.config import SandboxSpec, load_spec
from kfbox.sandbox.docker_engine import LABEL
from kfbox.sandbox.errors import KfboxError
from kfbox.sandbox.images.base import IMAGE_LABEL

MIB = 2**20
SAMPLE_S = 0.25
"""How often the sampler reads memory: a trial's containers live for seconds."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_spec(purpose: str = "bench") -> SandboxSpec:
    """A sandbox of its own, on free ports, so the user's sandboxes are never touched."""
    return load_spec(None, {"name": f"{purpose}-{secrets.token_hex(3)}",
                            "ports.jupyter": free_port(), "ports.registry": free_port()})


def clear_image_store(client: docker.DockerClient) -> None:
    """Remove every kfbox image and the download caches: the next `up` starts from nothing."""
    in_use = {c.image.id for c in client.containers.list(all=True, filters={"label": LABEL})}
    images = client.images.list(filters={"label": IMAGE_LABEL})
    if any(image.id in in_use for image in images):
        raise KfboxError(
            "--cold needs every kfbox sandbox down (their images are in use)",
            fix="run `kfbox down` for each sandbox, or bench without --cold",
        )
    for image in images:
        client.images.remove(image.id, force=True)
    for kind in ("base", "wheels", "registry"):
        shutil.rmtree(paths.cache_dir(kind), ignore_errors=True)


_CGROUP_STATS = (
    ("/sys/fs/cgroup/memory/docker/{id}/memory.stat", "rss"),  # cgroup v1, cgroupfs driver
    ("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.stat", "anon"),  # v2, systemd
    ("/sys/fs/cgroup/docker/{id}/memory.stat", "anon"),  # v2, cgroupfs driver
)


def resident_bytes(container_id: str) -> int:
    """The container's resident memory from its cgroup; 0 when it is gone (or unreadable)."""
    for template, key in _CGROUP_STATS:
        path = Path(template.format(id=container_id))
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    return 0


def sandbox_memory_mib(client: docker.DockerClient, sandbox: str) -> float:
    """Resident memory of every running container of the sandbox, components and workloads."""
    running = client.containers.list(sparse=True, filters={"label": f"{LABEL}={sandbox}"})
    return sum(resident_bytes(c.id) for c in running) / MIB


@contextlib.contextmanager
def peak_memory(client: docker.DockerClient, sandbox: str) -> Iterator[list[float]]:
    """Sample the sandbox's memory while the block runs; the list holds the peak (MiB)."""
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(docker.errors.DockerException):
                peak[0] = max(peak[0], sandbox_memory_mib(client, sandbox))
            stop.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()
