"""Offline bundles for the tests (written, small, repacked) and a fresh machine with no network
to install them on."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import docker

from kfbox import __version__
from kfbox.apps.offline.writer import INSTALL_DEBS_SOURCE, render_bootstrap
from kfbox.host.docker_engine import LABEL
from kfbox.host.images import base
from kfbox.host.offline.archive import pack
from kfbox.host.offline.manifest import (
    BOOTSTRAP,
    COMPONENT_IMAGES,
    IMAGES,
    INSTALL_DEBS,
    Deb,
    Fresh,
    Image,
    Manifest,
    Needs,
)
from kfbox.host.offline.target import Target, this_host
from kfbox.host.progress import quiet_reporter

REFUSED = "http://127.0.0.1:9"
"""Where every package index, mirror and proxy points on an offline machine: the trap."""


OFFLINE_ENV = {
    "PIP_INDEX_URL": f"{REFUSED}/simple",
    "KFBOX_DEBIAN_MIRROR": f"{REFUSED}/debian",
    **{name: REFUSED for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")},
    # The sandbox's own registry and notebook server are on loopback: never through a proxy.
    **{name: "127.0.0.1,localhost" for name in ("no_proxy", "NO_PROXY")},
}


APT_OFFLINE = (
    "rm -f /etc/apt/sources.list.d/* && "
    f"echo 'deb {REFUSED}/debian bookworm main' > /etc/apt/sources.list && "
    f"echo 'Acquire::http::Proxy \"{REFUSED}\";' > /etc/apt/apt.conf.d/99offline"
)


BEYOND_MINBASE = (*base.PACKAGES, "python3-minimal", "python3.11", "python3.11-minimal",
                  "libpython3.11-minimal", "libpython3.11-stdlib")
"""What kfbox's base image adds to debootstrap's minbase: purged to make a fresh machine."""


NESTED_ENGINE = (
    # The engine inside needs writable cgroups: with a private cgroup namespace, fresh mounts
    # show this container's own cgroup as their root (nothing of the host's is reachable).
    "mount -o remount,rw /sys && for d in /sys/fs/cgroup/*; do s=${d##*/}; umount $d && "
    "mount -t cgroup -o $([ $s = systemd ] && echo none,name=systemd || echo $s) cgroup $d; "
    "done && mount -o remount,rw,bind /proc/sys"
)


TRAP = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 9))
server.listen(16)
while True:
    conn, _ = server.accept()
    conn.settimeout(5)
    try:
        line = conn.recv(4096).split(b"\\r\\n")[0].decode(errors="replace")
    except OSError:
        line = "(nothing sent)"
    print("FETCH " + line, flush=True)
    conn.sendall(b"HTTP/1.1 503 Service Unavailable\\r\\nContent-Length: 0\\r\\n\\r\\n")
    conn.close()
"""


@dataclass
class WrittenBundle:
    path: Path
    stdout: str
    stderr: str
    seconds: float


def small_bundle(dest: Path, name: str = "small.tar", *, target: Target | None = None,
                 needs: Needs | None = None) -> Path:
    """dest/name: a bundle packed by kfbox's own code, with small stand-ins for the packages,
    wheels and images, for cases that must fail before any member is used."""
    staged = dest / f".{name}.staged"
    files = {
        "debs/python3_3.11.2-1_amd64.deb": b"python3 stand-in",
        "debs/docker.io_20.10.24_amd64.deb": b"docker.io stand-in",
        "wheels/kfbox-0.1.0-py3-none-any.whl": b"kfbox stand-in",
        IMAGES: os.urandom(64 * 1024),
    }
    for member, data in files.items():
        (staged / member).parent.mkdir(parents=True, exist_ok=True)
        (staged / member).write_bytes(data)
    shutil.copy2(INSTALL_DEBS_SOURCE, staged / INSTALL_DEBS)
    manifest = Manifest(
        kfbox_version=__version__,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        target=target or this_host(),
        fresh=Fresh(definition="debootstrap --variant=minbase bookworm", packages=88),
        images={name: Image(tag=f"kfbox-test/{name}:{uuid.uuid4().hex[:8]}",
                            id=f"sha256:{uuid.uuid4().hex * 2}")
                for name in COMPONENT_IMAGES},
        debs=[Deb(package="python3", version="3.11.2-1", arch="amd64", stage="bootstrap",
                  file="debs/python3_3.11.2-1_amd64.deb"),
              Deb(package="docker.io", version="20.10.24", arch="amd64", stage="engine",
                  file="debs/docker.io_20.10.24_amd64.deb")],
        wheels={"kfbox": __version__},
        scenarios=[],
        software={},
        made_with={"kfbox": __version__},
        sizes={},
        needs=needs or Needs(stage=10**4, venv=10**4, packages=10**4, images=10**4),
    )
    (staged / BOOTSTRAP).write_text(render_bootstrap(manifest))
    path = dest / name
    pack(staged, manifest, path)
    shutil.rmtree(staged)
    return path


def repack(source: Path, dest: Path, change: Callable[[str, bytes], bytes | None]) -> Path:
    """A copy of bundle `source` whose member data `change` rewrites (None drops the member);
    the manifest and .sha256 stay the original's, as a damaged copy's would."""
    with tarfile.open(source) as old, tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as new:
        for info in old.getmembers():
            handle = old.extractfile(info)
            data = change(info.name, handle.read() if handle else b"")
            if data is not None:
                info.size = len(data)
                new.addfile(info, io.BytesIO(data))
    shutil.copy2(source.with_name(source.name + ".sha256"), dest.with_name(dest.name + ".sha256"))
    return dest


class OfflineMachine:
    """A fresh Debian machine with no network at all: a container from kfbox's base image
    with what the image adds to debootstrap's minbase purged (no Python), network_mode
    "none", every package index, mirror and proxy pointed at a trap on 127.0.0.1:9 (a sidecar
    sharing its network namespace that records each connection and answers 503), and the
    bundles' folder mounted read-only at /bundles."""

    def __init__(self, client: docker.DockerClient, label: str, bundles: Path, *,
                 nested_engine: bool = False, tmpfs: dict[str, str] | None = None) -> None:
        self.client = client
        self.label = label
        image = base.ensure_base_image(quiet_reporter(), client)
        volumes = {str(bundles): {"bind": "/bundles", "mode": "ro"}}
        if nested_engine:
            # overlay2 cannot stack on the container's own overlay root; a volume it can.
            volume = client.volumes.create(f"{label}-docker", labels={LABEL: label})
            volumes[volume.name] = {"bind": "/var/lib/docker", "mode": "rw"}
        self.container = client.containers.run(
            image, ["sleep", "infinity"], name=label, labels={LABEL: label}, detach=True,
            init=True, network_mode="none", cgroupns="private", tmpfs=tmpfs or {},
            # --privileged fails where the engine lacks CAP_SYS_RESOURCE itself (as here):
            # every other capability plus unconfined profiles is what dockerd needs.
            cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
            security_opt=["seccomp=unconfined", "apparmor=unconfined"], volumes=volumes,
        )
        self.trap = client.containers.run(
            image, ["python3", "-c", TRAP], name=f"{label}-trap", labels={LABEL: label},
            detach=True, network_mode=f"container:{self.container.id}",
        )
        self.must("DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --auto-remove "
                  + " ".join(BEYOND_MINBASE) + " > /dev/null 2>&1")
        self.must(APT_OFFLINE)
        if nested_engine:
            self.must(NESTED_ENGINE)

    def run(self, command: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        """`sh -c command` as root with the offline environment; (exit code, output)."""
        code, output = self.container.exec_run(["/bin/sh", "-c", command],
                                               environment={**OFFLINE_ENV, **(env or {})})
        return code, output.decode(errors="replace")

    def must(self, command: str, env: dict[str, str] | None = None) -> str:
        code, output = self.run(command, env)
        assert code == 0, f"{command}\n{output[-4000:]}"
        return output

    def fetches(self) -> list[str]:
        """Every connection the trap saw: each one a fetch attempt."""
        return [line for line in self.trap.logs().decode().splitlines()
                if line.startswith("FETCH ")]
