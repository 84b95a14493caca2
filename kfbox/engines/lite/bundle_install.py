"""`kfbox up --from-bundle FILE` on the lite engine, up to the engine's own `up`: the bundle must
fit this machine (release, architecture, free disk) and every member must match its manifest
before anything is used; then its packages go to provisioning, its images are loaded (never
built, never fetched) and the sandbox records which bundle it runs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from kfbox.engines.lite.bundle_record import BundleRecord, record_bundle
from kfbox.host import docker_engine
from kfbox.host.diskspace import data_root, free_bytes
from kfbox.host.errors import KfboxError, UsageError
from kfbox.host.offline.archive import read_manifest, stream_member, verify
from kfbox.host.offline.manifest import IMAGES, Manifest, size_text
from kfbox.host.offline.target import mismatch, this_host
from kfbox.host.progress import Reporter

LOAD_TIMEOUT_S = 1800


@dataclass
class Need:
    path: Path
    size: int
    what: str
    env: str = ""
    """The variable that moves it to another disk, if one does."""


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path):
        path = path.parent
    return path


def check_disk(needs: list[Need]) -> None:
    """UsageError naming the first filesystem that cannot hold what lands on it."""
    by_mount: dict[Path, list[Need]] = {}
    for need in needs:
        by_mount.setdefault(_mount_point(need.path), []).append(need)
    for mount, group in by_mount.items():
        total = sum(n.size for n in group)
        free = free_bytes(mount)
        if total > free:
            what = ", ".join(f"{n.what} {size_text(n.size)}" for n in group)
            movable = [n.env for n in group if n.env]
            raise UsageError(
                f"not enough disk on {mount}: the bundle needs {size_text(total)} there "
                f"({what}), {size_text(free)} free",
                fix=f"free space on {mount}"
                + (f", or point {movable[0]} at a larger disk" if movable else ""),
            )


def _check_sidecar(path: Path, sha256: str, reporter: Reporter) -> None:
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        reporter.warn(f"no {sidecar.name} beside the bundle: its members were checked against "
                      "its manifest only")
        return
    expected = (sidecar.read_text().split() or [""])[0]
    if expected != sha256:
        raise UsageError(f"{path} does not match {sidecar.name} (its sha256 is {sha256[:16]}…)",
                         fix="copy both files again from where the bundle was made")


@dataclass
class VerifiedBundle:
    path: Path
    manifest: Manifest
    sha256: str
    debs: Path | None
    """The bundle's .deb files, unpacked and verified, when the engine is to be installed."""

    def load_images(self, client: docker.DockerClient, reporter: Reporter) -> None:
        """Load the images into the engine unless it has them all (by content id); images a
        failed load left behind are removed."""
        wanted = self.manifest.images
        if all(_has(client, image.tag, image.id) for image in wanted.values()):
            reporter.info(f"the bundle's {len(wanted)} images are already loaded")
            return
        before = {tag for image in client.images.list() for tag in image.tags}
        member = self.manifest.members[IMAGES]
        loader = docker_engine.connect(timeout=LOAD_TIMEOUT_S)
        with reporter.step(f"Loading {len(wanted)} images ({size_text(member.size)} "
                           "compressed)") as update:
            chunks = stream_member(self.path, IMAGES, member,
                                   lambda done: update(f"{done * 100 // member.size}%"))
            try:
                for event in loader.api.load_image(chunks):
                    if "error" in event:
                        raise KfboxError(f"docker load failed: {event['error']}")
            except BaseException:
                _remove_new(client, [i.tag for i in wanted.values()], before)
                raise
        for name, image in wanted.items():
            if not _has(client, image.tag, image.id):
                raise KfboxError(f"the bundle's {name} image {image.tag} did not load as "
                                 f"{image.id[:19]}", fix="copy the bundle again")

    def record(self, sandbox: str) -> None:
        record_bundle(sandbox, BundleRecord(
            sha256=self.sha256, file=str(self.path),
            images={name: image.tag for name, image in self.manifest.images.items()}))


def _has(client: docker.DockerClient, tag: str, image_id: str) -> bool:
    try:
        return client.images.get(tag).id == image_id
    except ImageNotFound:
        return False


def _remove_new(client: docker.DockerClient, tags: list[str], before: set[str]) -> None:
    for tag in tags:
        if tag not in before:
            with contextlib.suppress(ImageNotFound, APIError):
                client.images.remove(tag, force=True)


@contextlib.contextmanager
def verified_bundle(path: Path, reporter: Reporter) -> Iterator[VerifiedBundle]:
    """The bundle at `path`, checked against this machine and verified member by member, with
    its packages unpacked when no engine answers (they go to provisioning); they are removed
    on exit. UsageError, before anything is installed or loaded, for a bundle that is not for
    this machine, does not fit its disks, or differs from its manifest."""
    if path.is_dir():
        raise UsageError(f"--from-bundle {str(path)!r} is a folder: the lite engine installs "
                         "from the bundle file", fix="give the .tar that `kfbox bundle` wrote "
                         "(a folder is a Kubernetes bundle: --engine kind)")
    manifest = read_manifest(path)
    host = this_host()
    problem = mismatch(manifest.target, host)
    if problem:
        raise UsageError(f"{path.name}: {problem}",
                         fix=f"make the bundle with `kfbox bundle` on a {host.describe()} machine")
    answers, _ = docker_engine.reachable()
    # Debian's docker.io keeps its data in /var/lib/docker until an engine says otherwise.
    root = data_root(docker_engine.connect()) if answers else Path("/var/lib/docker")
    debs = sum(manifest.members[d.file].size for d in manifest.debs)
    needs = [Need(root, manifest.needs.images, "images")]
    if not answers:
        needs += [Need(Path(tempfile.gettempdir()), debs, "packages to install", "TMPDIR"),
                  Need(Path("/usr"), manifest.needs.packages, "installed packages")]
    check_disk(needs)
    with tempfile.TemporaryDirectory(prefix="kfbox-bundle-") as tmp:
        size = path.stat().st_size
        with reporter.step(f"Verifying {path.name} ({len(manifest.members)} members, "
                           f"{size_text(size)})") as update:
            sha256 = verify(path, manifest, keep=lambda name: not answers
                            and name.startswith("debs/"), into=Path(tmp), update=update)
            _check_sidecar(path, sha256, reporter)
        yield VerifiedBundle(path, manifest, sha256, None if answers else Path(tmp) / "debs")
