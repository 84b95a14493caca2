"""A host-side copy of a seeded registry's storage, per ML runtime image.

Pushing the runtime (GBs, gzip-compressed by the engine on the way) into a new sandbox's empty
registry costs a minute on a small machine; copying the already-compressed blobs costs seconds.
The copy is a cache like the image store, never sandbox data. It is keyed by the runtime
image's content id, not its tag: a rebuilt image (same inputs, same tag) has new layer
digests, and stale blobs would only make the push upload everything again.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import docker

from kfbox.host import paths

STORAGE = "/var/lib/registry"


def cache_path(image_id: str) -> Path:
    return paths.cache_dir("registry") / image_id.replace(":", "-")


def _copy(
    client: docker.DockerClient,
    helper_image: str,
    labels: dict[str, str],
    source: str,
    dest: str,
    volumes: dict[str, dict[str, str]],
) -> None:
    client.containers.run(
        helper_image,
        ["cp", "-a", f"{source}/.", f"{dest}/"],
        volumes=volumes,
        labels=labels,
        remove=True,
        network_mode="none",
    )


def prefill(
    client: docker.DockerClient,
    volume: str,
    image_id: str,
    helper_image: str,
    labels: dict[str, str],
) -> bool:
    """Copy the cached storage into an empty registry volume; False when there is no cache."""
    cached = cache_path(image_id)
    if not cached.is_dir():
        return False
    _copy(
        client,
        helper_image,
        labels,
        "/cache",
        STORAGE,
        {str(cached): {"bind": "/cache", "mode": "ro"}, volume: {"bind": STORAGE, "mode": "rw"}},
    )
    return True


def save(
    client: docker.DockerClient,
    volume: str,
    image_id: str,
    helper_image: str,
    labels: dict[str, str],
) -> None:
    """Keep a copy of a freshly seeded registry's storage (written aside, then renamed, so a
    crash never leaves a half cache behind); copies for older runtime builds go."""
    cached = cache_path(image_id)
    if cached.is_dir():
        return
    for stale in cached.parent.iterdir():
        if not stale.name.endswith(".partial"):  # another sandbox may be writing that one
            shutil.rmtree(stale, ignore_errors=True)
    partial = cached.with_name(f"{cached.name}.{uuid.uuid4().hex[:6]}.partial")
    partial.mkdir(parents=True)
    try:
        _copy(
            client,
            helper_image,
            labels,
            STORAGE,
            "/cache",
            {
                volume: {"bind": STORAGE, "mode": "ro"},
                str(partial): {"bind": "/cache", "mode": "rw"},
            },
        )
        if not cached.exists():  # a sandbox seeding at the same time may have won the race
            partial.rename(cached)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
