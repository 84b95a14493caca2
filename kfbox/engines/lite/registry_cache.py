"""A host-side copy of a seeded registry's storage, per ML runtime image.

Pushing the runtime (GBs, gzip-compressed by the engine on the way) into a new sandbox's empty
registry costs a minute on a small machine; copying the already-compressed blobs costs seconds.
The copy is a cache like the image store, never sandbox data. It is keyed by the runtime
image's content id, not its tag: a rebuilt image (same inputs, same tag) has new layer
digests, and stale blobs would only make the push upload everything again.

Only the host's engine (root) writes it: a sandbox on the host's engine leaves a copy of its
freshly seeded registry (`save`), and a rootless sandbox, whose registry its notebook can write,
has one made by the host's engine pushing into a throwaway registry (`build`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import docker
import requests

from kfbox.host import paths
from kfbox.host.errors import KfboxError

STORAGE = "/var/lib/registry"
V2 = Path("docker/registry/v2")
"""The registry's layout under STORAGE (distribution's filesystem driver): blobs by digest,
and per repository its tags, each naming a manifest digest."""
READY_S = 30


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
    with _aside(cached) as partial:
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


def remove_abandoned(folder: Path) -> list[Path]:
    """Remove the folders aside that no running process writes any more (an `up` killed while
    it wrote one: its pid is in the name); returns them."""
    removed = []
    for partial in folder.glob("*.partial") if folder.is_dir() else []:
        writer = partial.name.removesuffix(".partial").rsplit(".", 1)[-1].split("-")[0]
        if writer.isdigit() and not _alive(int(writer)):
            shutil.rmtree(partial, ignore_errors=True)
            removed.append(partial)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


@contextlib.contextmanager
def _aside(cached: Path) -> Iterator[Path]:
    """A folder beside CACHED to write the cache into, renamed into place when the writing
    ends well (so a crash never leaves a half cache behind), else removed; removed too when a
    sandbox writing at the same time won the race."""
    remove_abandoned(cached.parent)
    partial = cached.with_name(f"{cached.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}.partial")
    partial.mkdir(parents=True)
    try:
        yield partial
        if not cached.exists():
            partial.rename(cached)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def build(
    host: docker.DockerClient,
    image: str,
    image_id: str,
    registry_image: str,
    name: str,
    labels: dict[str, str],
    stop: threading.Event | None = None,
) -> Path:
    """Make the cache when it is missing, on the host's engine: a throwaway registry (container
    NAME with LABELS, the sandbox registry's own image, on a free 127.0.0.1 port) stores into a
    folder aside, the host's engine pushes IMAGE into it (compressing every layer, once for
    every sandbox), then the folder is renamed into place. Setting `stop` abandons it (the
    push is cancelled with its stream, the registry and the folder removed)."""
    cached = cache_path(image_id)
    if cached.is_dir():
        return cached
    repository, tag = image.rsplit(":", 1)
    with (_aside(cached) as partial,
          _throwaway_registry(host, registry_image, partial, name, labels) as address):
        target = f"{address}/{repository}"
        host.images.get(image).tag(target, tag)
        try:
            for event in host.images.push(target, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise KfboxError(f"caching the ML runtime's registry layers failed: "
                                     f"{event['error']}")
                if stop is not None and stop.is_set():
                    raise KfboxError("caching the ML runtime's registry layers: abandoned")
        finally:
            host.images.remove(f"{target}:{tag}")  # the tag only: the image stays
    return cached


@contextlib.contextmanager
def _throwaway_registry(host: docker.DockerClient, registry_image: str, storage: Path,
                        name: str, labels: dict[str, str]) -> Iterator[str]:
    with contextlib.suppress(docker.errors.NotFound):  # left by an `up` that was killed
        host.containers.get(name).remove(force=True)
    container = host.containers.run(
        registry_image, detach=True, name=name, labels=labels,
        ports={"5000/tcp": ("127.0.0.1", None)},  # a free port, this host only
        volumes={str(storage): {"bind": STORAGE, "mode": "rw"}},
    )
    try:
        deadline = time.monotonic() + READY_S
        while True:
            container.reload()
            bound = (container.ports.get("5000/tcp") or [{}])[0].get("HostPort")
            address = f"127.0.0.1:{bound}"
            with contextlib.suppress(requests.RequestException):
                if bound and requests.get(f"http://{address}/v2/", timeout=2).ok:
                    break
            if time.monotonic() > deadline:
                raise KfboxError(f"the throwaway registry did not answer within {READY_S}s")
            time.sleep(0.2)
        yield address
    finally:
        container.remove(force=True)


def layers(image_id: str, repository: str) -> list[tuple[str, str]]:
    """Each layer of the cached image as (diff id, compressed blob digest), bottom first: the
    manifest's layers and its config's rootfs diff ids, in the same order (image manifest v2,
    schema 2). The config must be IMAGE_ID itself, so a stale cache teaches nothing wrong."""
    v2 = cache_path(image_id) / V2
    tags = v2 / "repositories" / repository / "_manifests" / "tags"
    (tag,) = list(tags.iterdir())  # the cache holds one tag: the seed's
    manifest = json.loads(_blob(v2, (tag / "current" / "link").read_text().strip()))
    if manifest["config"]["digest"] != image_id:
        raise KfboxError(f"the registry cache for {image_id} holds another image")
    config = json.loads(_blob(v2, image_id))
    digests = [layer["digest"] for layer in manifest["layers"]]
    diff_ids = config["rootfs"]["diff_ids"]
    if len(digests) != len(diff_ids):
        raise KfboxError(f"the registry cache for {image_id} does not match its config")
    return list(zip(diff_ids, digests, strict=True))


def _blob(v2: Path, digest: str) -> bytes:
    algorithm, hexa = digest.split(":", 1)
    return (v2 / "blobs" / algorithm / hexa[:2] / hexa / "data").read_bytes()


@contextlib.contextmanager
def archive(image_id: str) -> Iterator[IO[bytes]]:
    """The cached storage as a tar stream (for an engine that cannot bind root's folders)."""
    tar = subprocess.Popen(["tar", "-C", str(cache_path(image_id)), "-c", "."],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert tar.stdout is not None
    try:
        yield tar.stdout
    except BaseException:
        tar.kill()
        raise
    finally:
        tar.wait()
    if tar.returncode:
        raise KfboxError(f"reading the registry cache at {cache_path(image_id)} failed "
                         f"(tar exited {tar.returncode})")
