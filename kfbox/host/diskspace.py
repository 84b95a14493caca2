"""Free space where the Docker engine keeps images and volumes, checked before work that fills
it (an image build, seeding a registry), so a full disk is one line before anything is made
rather than a failure half-way; and a full disk met anyway, said in the same words."""

from __future__ import annotations

import shutil
from pathlib import Path

import docker

from kfbox.host.errors import PreflightError

GIB = 2**30
NEEDS_GIB = {"base": 1.0, "registry": 0.5, "jupyter": 2.0, "tracking": 1.0, "runtime": 4.5,
             "seed": 1.0}
"""Peak space each piece of work takes in Docker's data-root, measured on this project's
machine with a margin: a component image's build (its wheel-install stage, pruned afterwards,
and the installed copy; the runtime image is 1.7 GB), and seeding a registry with the runtime
(its compressed layers, about 0.5 GB)."""
FIX = "free space there (`docker system prune` removes what no container uses), or move " \
      "Docker's data-root to a larger disk"


def data_root(client: docker.DockerClient) -> Path:
    return Path(client.info().get("DockerRootDir") or "/var/lib/docker")


def free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def require_space(client: docker.DockerClient, work: str, need_gib: float) -> None:
    """PreflightError naming `work` and the space it needs when Docker's data-root lacks it."""
    root = data_root(client)
    free = free_bytes(root) / GIB
    if free < need_gib:
        raise PreflightError(
            f"{work} needs about {need_gib:.1f} GiB free in {root}; {free:.1f} GiB is free",
            fix=FIX,
        )


def is_disk_full(message: str) -> bool:
    return "no space left on device" in message.lower()


def disk_full(work: str, where: Path | str) -> PreflightError:
    """The error for a full disk met during `work` in `where` (the engine's own words are a
    wall, or, for a push, only the registry's HTTP 500)."""
    return PreflightError(f"{work} ran out of space in {where} (no space left on device)",
                          fix=FIX)
