"""The Debian base image: pulled when a registry answers, else built offline with debootstrap.

Either way the result carries the same tag, a hash of what goes into it, so every component
image builds FROM it without ever pulling. The debootstrap rootfs is cached as a tarball:
re-creating the image after `docker rmi` needs no network at all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from kfbox.host import paths
from kfbox.host.diskspace import NEEDS_GIB, require_space
from kfbox.host.docker_engine import connect
from kfbox.host.errors import KfboxError, PreflightError
from kfbox.host.images.dockerbuild import ImageBuildError, docker_build
from kfbox.host.progress import Reporter

SUITE = "bookworm"
PULL_REFERENCE = f"debian:{SUITE}-slim"
# docker-registry rides in the base so the registry image needs no apt at build time; it is a
# single static binary, cheaper than a second package path for one component.
PACKAGES = (
    "python3",
    "python-is-python3",
    "python3-pip",
    "python3-venv",
    "ca-certificates",
    "procps",
    "docker-registry",
)
IMAGE_LABEL = "kfbox.image"
ENV = {"LANG": "C.UTF-8", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


APT_SOURCES = Path("/etc/apt")


def mirror() -> str:
    """KFBOX_DEBIAN_MIRROR, else the Debian archive the host's apt already uses, so a
    corporate mirror or caching proxy keeps working for the base image too."""
    if os.environ.get("KFBOX_DEBIAN_MIRROR"):
        return os.environ["KFBOX_DEBIAN_MIRROR"]
    for uri in apt_uris(APT_SOURCES):
        if uri.rstrip("/").endswith("/debian"):  # the main archive, not debian-security
            return uri.rstrip("/")
    raise PreflightError(
        "no Debian archive is configured in this host's apt sources",
        fix="set KFBOX_DEBIAN_MIRROR to the URL of a Debian archive",
    )


def apt_uris(root: Path) -> list[str]:
    """Archive URIs from sources.list (one-line `deb URI suite ...`) and deb822 .sources."""
    uris: list[str] = []
    for file in [root / "sources.list", *sorted((root / "sources.list.d").glob("*"))]:
        if not file.is_file():
            continue
        for line in file.read_text(errors="replace").splitlines():
            words = line.split("#", 1)[0].split()
            if words[:1] == ["deb"]:
                uris += [w for w in words[1:] if "://" in w][:1]
            elif words[:1] == ["URIs:"]:
                uris += words[1:]
    return uris


def base_tag() -> str:
    digest = hashlib.sha256(f"{SUITE}|{' '.join(PACKAGES)}|{sorted(ENV.items())}".encode())
    return f"kfbox/base:{SUITE}-{digest.hexdigest()[:12]}"


def ensure_base_image(reporter: Reporter, client: docker.DockerClient | None = None) -> str:
    """Return the base image tag, creating the image if the engine lacks it."""
    client = client or connect()
    tag = base_tag()
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    require_space(client, f"preparing base image {tag}", NEEDS_GIB["base"])
    with reporter.step(f"Preparing base image {tag}", action="image:base") as update:
        if not _from_registry(client, tag, update, reporter):
            _from_debootstrap(client, tag, update)
    return tag


def _from_registry(client: docker.DockerClient, tag: str, update, reporter: Reporter) -> bool:
    """Pull debian-slim and add the packages. False when no registry answers (quietly), or
    when installing the packages fails (with a warning): debootstrap may still get there."""
    try:
        update(f"pulling {PULL_REFERENCE}")
        client.images.pull(PULL_REFERENCE)
    except APIError:
        return False
    update("installing packages")
    dockerfile = (
        f"FROM {PULL_REFERENCE}\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends "
        f"{' '.join(PACKAGES)} && rm -rf /var/lib/apt/lists/*\n"
        + "".join(f"ENV {k}={v}\n" for k, v in ENV.items())
    )
    with tempfile.TemporaryDirectory(prefix="kfbox-base-") as context:
        (Path(context) / "Dockerfile").write_text(dockerfile)
        try:
            docker_build(client, Path(context), tag, labels={IMAGE_LABEL: "base"}, update=update)
        except ImageBuildError as exc:
            reporter.warn(f"{exc.line()}; building the base with debootstrap instead")
            return False
    return True


def rootfs_tarball() -> Path:
    return paths.cache_dir("base") / f"{base_tag().split(':')[1]}.tar"


def _from_debootstrap(client: docker.DockerClient, tag: str, update) -> None:
    tarball = rootfs_tarball()
    if not tarball.exists():
        _debootstrap_to(tarball, update)
    update("importing the rootfs")
    changes = [f"ENV {k}={v}" for k, v in ENV.items()]
    changes += [f'LABEL {IMAGE_LABEL}="base"', 'CMD ["/bin/bash"]']
    with tarball.open("rb") as data:
        try:
            result = client.api.import_image_from_data(
                data, repository=tag.split(":")[0], tag=tag.split(":")[1], changes=changes
            )
        except APIError as exc:
            raise KfboxError(f"docker import of the base rootfs failed: {exc.explanation}") from exc
    if "error" in str(result).lower():
        raise KfboxError(f"docker import of the base rootfs failed: {result}")


def _debootstrap_to(tarball: Path, update) -> None:
    tool = shutil.which("debootstrap")
    if not tool:
        raise PreflightError(
            "no registry answers and debootstrap is missing, so the base image cannot be built",
            fix="apt-get install -y debootstrap (or run `kfbox provision`)",
        )
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        command = [
            tool,
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(rootfs),
            mirror(),
        ]
        update(f"debootstrap {SUITE} from {mirror()} (about a minute)")
        log = Path(tmp) / "debootstrap.log"
        with log.open("w") as sink:
            done = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
            raise KfboxError(
                f"debootstrap failed (exit {done.returncode}): {tail[0]}",
                fix=f"check that {mirror()} is reachable, or set KFBOX_DEBIAN_MIRROR",
            )
        # apt's package cache is dead weight in an image
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial")
        with tarfile.open(partial, "w") as archive:
            archive.add(rootfs, arcname=".")
        partial.rename(tarball)
