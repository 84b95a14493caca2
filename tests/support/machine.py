"""What the test suite must leave as it found it on a person's machine: the machine's Docker
engine (the same dockerd process, never stopped or restarted), a container of theirs that has
nothing to do with kfbox (still running), the sandbox `kfbox` if one is up (its token, its
containers and their images), and every container, image, volume and network not made by a test.

Test-made things carry the label kfbox.sandbox=<their own name> (e2e-*, fault-*, class-*, ...);
everything else, and the default sandbox `kfbox`, is the person's. tests/e2e/conftest.py takes
the snapshot once the session's tests are collected, before any runs; the last test of the
session (tests/e2e/test_machine_untouched.py) compares, then removes what the snapshot made (its
guard container and that container's image) and nothing else.

Where the e2e tests run in more than one pytest session at once (bin/run-tests), the snapshot is
taken before the first starts and the check runs after the last ends, in a session of its own
that reads the snapshot from the file named by KFBOX_MACHINE_SNAPSHOT:

    python -m tests.support.machine take FILE     the snapshot (its guard started) into FILE
    python -m tests.support.machine forget FILE   the guard removed (a run stopped before its check)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import socket
import struct
import sys
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import docker
import pytest
from docker.errors import DockerException, NotFound

from kfbox.host import docker_engine, paths
from kfbox.host.docker_engine import LABEL

DEFAULT_SANDBOX = "kfbox"
GUARD = "not-kfbox-guard"
"""The guard's image repository and container name prefix; it carries no kfbox label."""
BEFORE = pytest.StashKey["Snapshot | str"]()
"""The snapshot, or why none could be taken (no engine)."""
SNAPSHOT_ENV = "KFBOX_MACHINE_SNAPSHOT"
"""A file holding the snapshot taken before this session (by `take` below): the session that
runs the check reads it rather than taking its own."""


@dataclass
class Snapshot:
    address: str
    engine: tuple[int, str | None] | None
    """The dockerd answering at `address`: its pid and start time (None over TCP)."""
    token: str | None
    """sha256 of the default sandbox's JupyterLab token, when it has one."""
    theirs: dict[str, str] = field(default_factory=dict)
    guard_container: str = ""
    guard_image: str = ""
    links: list[str] = field(default_factory=list)
    """The machine's network interfaces (docker0 among them), less those tests make."""
    accounts: list[str] = field(default_factory=list)
    """The machine's users, its subordinate id lines and its cgroups named kfbox-*: a test's
    rootless Docker engine makes each, and must take each away."""

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.address, timeout=60)


def _process_start(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def engine_process(address: str) -> tuple[int, str | None] | None:
    """(pid, start time) of the process serving the engine's unix socket (SO_PEERCRED)."""
    if not address.startswith("unix://"):
        return None
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(address.removeprefix("unix://"))
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid = struct.unpack("3i", creds)[0]
    return pid, _process_start(pid)


def _token() -> str | None:
    file = paths.state_dir(DEFAULT_SANDBOX) / "jupyter-token"
    return hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else None


def _persons(labels: dict[str, str] | None) -> bool:
    return (labels or {}).get(LABEL, DEFAULT_SANDBOX) == DEFAULT_SANDBOX


def theirs(client: docker.DockerClient) -> dict[str, str]:
    """Everything of the person's in the engine, each with what must not change."""
    found: dict[str, str] = {}
    for listed in client.containers.list(ignore_removed=True, all=True, sparse=True):
        if not _persons(listed.attrs.get("Labels")):
            continue
        with contextlib.suppress(NotFound):
            c = client.containers.get(listed.id)
            state = c.attrs["State"]
            found[f"container {c.name}"] = (f"{c.id[:12]} image {c.attrs['Image']}"
                                            f" started {state['StartedAt']} {state['Status']}")
    for image in client.images.list():
        if _persons(image.labels):
            found[f"image {image.id}"] = " ".join(sorted(image.tags))
    for volume in client.volumes.list():
        if _persons(volume.attrs.get("Labels")):
            found[f"volume {volume.name}"] = str(volume.attrs.get("CreatedAt"))
    for network in client.networks.list():
        if _persons(network.attrs.get("Labels")):
            found[f"network {network.name}"] = network.id[:12]
    return found


def _guard_image(client: docker.DockerClient) -> str:
    """A tiny image of the suite's own: the host's /usr (and /bin, /lib, ... as on the host) is
    mounted read-only into it, so it runs the host's `sleep` and needs no other image."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr"):
            host = Path("/", name)
            entry = tarfile.TarInfo(name)
            if host.is_symlink():
                entry.type, entry.linkname = tarfile.SYMTYPE, os.readlink(host)
            elif host.is_dir():
                entry.type, entry.mode = tarfile.DIRTYPE, 0o755
            else:
                continue
            tar.addfile(entry)
    tag = secrets.token_hex(4)
    client.api.import_image_from_data(data.getvalue(), repository=GUARD, tag=tag)
    return f"{GUARD}:{tag}"


def start_guard(client: docker.DockerClient) -> tuple[str, str]:
    """(container id, image id) of a running container that has nothing to do with kfbox."""
    tag = _guard_image(client)
    mounts = {str(p): {"bind": str(p), "mode": "ro"}
              for p in map(Path, ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr"))
              if p.is_dir() and not p.is_symlink()}
    container = client.containers.run(tag, ["sleep", "infinity"], detach=True,
                                      name=tag.replace(":", "-"), network_mode="none",
                                      volumes=mounts)
    return container.id, client.images.get(tag).id


def _links() -> list[str]:
    """This machine's network interfaces, less the ones containers and test engines come and go
    with (veth pairs, the bridges of networks, the suite engine's kfbox-test<slot>)."""
    return sorted(link.name for link in Path("/sys/class/net").iterdir()
                  if not link.name.startswith(("veth", "br-", "kfbox-test")))


def _accounts() -> list[str]:
    """Users, subordinate id lines and kfbox-* cgroups, one string each."""
    found = [f"user {line.split(':')[0]}" for line in Path("/etc/passwd").read_text().splitlines()]
    for name in ("subuid", "subgid"):
        file = Path("/etc") / name
        if file.exists():
            found += [f"{name} line {line}" for line in file.read_text().splitlines() if line]
    cgroups = [*Path("/sys/fs/cgroup").glob("*/kfbox-*"), *Path("/sys/fs/cgroup").glob("kfbox-*")]
    # The suite engine's cgroup parent (tests/support/suite_engine.py) lives until the session
    # ends, after this check.
    found += [f"cgroup {path}" for path in cgroups if not path.name.startswith("kfbox-test-")]
    return sorted(found)


def take() -> Snapshot | str:
    """The machine as the person left it, with the guard running; or why it cannot be taken."""
    address = docker_engine.address()
    ok, detail = docker_engine.reachable()
    if not ok:
        return f"no Docker engine to check the machine with: {detail}"
    try:
        snapshot = Snapshot(address, engine_process(address), _token())
        client = snapshot.client()
        snapshot.guard_container, snapshot.guard_image = start_guard(client)
        snapshot.theirs = theirs(client)
        snapshot.links = _links()
        snapshot.accounts = _accounts()
    except (DockerException, OSError) as exc:
        return f"could not take the machine's snapshot: {str(exc).splitlines()[0]}"
    return snapshot


def changes(before: Snapshot) -> list[str]:
    """What differs from the snapshot, one line each (no token in them)."""
    client = before.client()
    found = []
    with contextlib.suppress(OSError):
        if engine_process(before.address) != before.engine:
            found.append(f"the engine's process was {before.engine}, now "
                         f"{engine_process(before.address)}: it was stopped or restarted")
    if _token() != before.token:
        found.append(f"the token of sandbox {DEFAULT_SANDBOX!r} changed")
    try:
        guard = client.containers.get(before.guard_container)
        if guard.status != "running":
            found.append(f"the unrelated container {guard.name} is {guard.status}")
    except NotFound:
        found.append(f"the unrelated container {before.guard_container[:12]} was removed")
    found += [f"network interface {link} was removed" for link in before.links
              if link not in _links()]
    now_accounts = _accounts()
    found += [f"{entry} was removed" for entry in before.accounts if entry not in now_accounts]
    found += [f"{entry} was left behind" for entry in now_accounts
              if entry not in before.accounts]
    now = theirs(client)
    for key, was in before.theirs.items():
        if key.startswith("image "):
            missing = set(was.split()) - set(now.get(key, "").split())
            if key not in now or missing:
                found.append(f"{key} ({was}) lost {' '.join(sorted(missing)) or 'itself'}")
        elif now.get(key) != was:
            found.append(f"{key}: was {was}, now {now.get(key, 'gone')}")
    return found


def remove_guard(before: Snapshot) -> None:
    """Remove what the snapshot made: the guard container and its image, only."""
    with contextlib.suppress(DockerException):
        client = before.client()
        with contextlib.suppress(NotFound):
            client.containers.get(before.guard_container).remove(force=True)
        with contextlib.suppress(NotFound):
            client.images.remove(before.guard_image)


def save(before: Snapshot | str, path: Path) -> None:
    """The snapshot, or why none could be taken, as JSON (0600: it holds a token's hash)."""
    data = asdict(before) if isinstance(before, Snapshot) else {"unreachable": before}
    path.touch(mode=0o600)
    path.write_text(json.dumps(data))


def load(path: Path) -> Snapshot | str:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return f"no machine snapshot in {path} ({exc}): take it first, " \
               f"`python -m tests.support.machine take {path}`"
    if "unreachable" in data:
        return str(data["unreachable"])
    engine = data.pop("engine")
    return Snapshot(**data, engine=tuple(engine) if engine is not None else None)


def before_session() -> Snapshot | str:
    """The snapshot this session compares with: the one in the file SNAPSHOT_ENV names (taken
    before other sessions started), else one taken now."""
    named = os.environ.get(SNAPSHOT_ENV)
    return load(Path(named)) if named else take()


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["take", file]:
            save(take(), Path(file))
        case ["forget", file]:
            if isinstance(found := load(Path(file)), Snapshot):
                remove_guard(found)
        case _:
            sys.exit("usage: python -m tests.support.machine take|forget FILE")
