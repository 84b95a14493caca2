"""A sandbox's rootless Docker engine: dockerd run by an unprivileged system user made for the
sandbox, inside a cgroup made for it, so code holding its socket never becomes root on the host.

docs/security.md (option B) chose this boundary; this module is its host-side building block.
Everything here runs as root (kfbox's CLI does) and touches only what it made: users whose
comment starts with COMMENT, their subordinate id lines, cgroups and folders named after them.

Layout for an engine user `kfbox-<sandbox>` with uid U:

- `/home/<user>` (0700, the user's): the engine's data root, `.local/share/docker`.
- `/run/kfbox-rootless/U` (0700, the user's): XDG_RUNTIME_DIR, holding the socket `docker.sock`.
- `/var/lib/kfbox-rootless/<user>` (0700, root's): `engine.json`, `engine.pid`, `engine.log`.
  Root's, not the engine user's: root signals the pid it finds there and appends to that log, so
  the engine user (and every workload, which runs as that user) must not be able to forge either.
- the cgroup `<user>` under the memory, pids, cpu and cpuacct controllers (v1) or the unified tree
  (v2).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import io
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

from kfbox.host.errors import KfboxError

SCRIPT = Path("/usr/share/docker.io/contrib/dockerd-rootless.sh")
"""Debian docker.io 20.10's launcher: it re-executes itself under rootlesskit (user, mount and
network namespaces, slirp4netns, `--disable-host-loopback`, `--copy-up=/etc --copy-up=/run`)
and then runs dockerd, passing its own arguments on (read from the script on Debian 12)."""
TOOLS = ("rootlesskit", "slirp4netns", "newuidmap", "newgidmap")
"""What the script needs besides dockerd: the playbook's docker_engine role installs them."""
TUN = Path("/dev/net/tun")

HOMES = Path("/home")
RUN_ROOT = Path("/run/kfbox-rootless")
STATE_ROOT = Path("/var/lib/kfbox-rootless")
CGROUP_ROOT = Path("/sys/fs/cgroup")
SYSCTL = Path("/proc/sys")
USERNS_SYSCTLS = (
    ("user/max_user_namespaces", "0", "sysctl -w user.max_user_namespaces=15000"),
    # Debian's own switch (bookworm defaults to 1).
    ("kernel/unprivileged_userns_clone", "0", "sysctl -w kernel.unprivileged_userns_clone=1"),
    # Ubuntu 23.10+: unconfined processes get user namespaces without capabilities, which
    # rootlesskit cannot work with, unless an AppArmor profile allows them.
    ("kernel/apparmor_restrict_unprivileged_userns", "1",
     "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give rootlesskit an "
     "AppArmor profile that allows userns"),
)
"""Kernel settings that refuse a rootless engine its user namespace: (setting, the refusing
value, the fix)."""
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
"""The v1 hierarchies the engine joins: three to limit it, cpuacct to count its CPU time."""

COMMENT = "kfbox rootless Docker engine"
"""The GECOS field of every user this module creates, then the sandbox name: remove_rootless_docker
refuses any user without it."""
USER_PREFIX = "kfbox-"
USER_MAX = 32
"""useradd accepts longer names, but utmp, `ps` and adduser stop at 32 characters."""
SANDBOX_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

SUBID_COUNT = 65536
"""One user namespace's worth: the container's uids 1..65536 (0 is the engine user itself)."""
SUBID_BASE = 1_000_000_000
"""Engine users' ranges start here: above login.defs' SUB_UID_MAX (600100000 on Debian), so useradd
never hands one of them to a later login user, above every uid a host's accounts or
its Docker engine's containers use, and below 2**31, which some tools still read as signed."""
SUBID_LIMIT = 2**31

PING_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
"""dockerd stops its containers on SIGTERM (15 s by default, `shutdown-timeout`), then itself."""
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
"""dockerd and iptables live in /usr/sbin on Debian; /usr/local is left out on purpose, so the
engine runs the packaged binaries only."""


@dataclass(frozen=True)
class RootlessDocker:
    """One sandbox's rootless engine: who runs it and where its socket is."""

    sandbox: str
    user: str
    uid: int
    gid: int
    home: Path
    socket: Path

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def runtime_dir(self) -> Path:
        return self.socket.parent

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.user

    @property
    def log(self) -> Path:
        return self.state_dir / "engine.log"

    def client(self, timeout: int = 120) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host, timeout=timeout)

    def answers(self) -> bool:
        return _ping(self.socket)


# --- names and subordinate ids (pure, unit-tested) ---


def engine_user(sandbox: str) -> str:
    """`kfbox-<sandbox>`, or when that is over 32 characters its start and a hash of the whole
    name, so two long names that share a prefix still get two users."""
    if not SANDBOX_PATTERN.match(sandbox):
        raise KfboxError(
            f"{sandbox!r} cannot name a rootless Docker engine",
            fix="use lower-case letters, digits and dashes, starting with a letter or digit",
        )
    name = USER_PREFIX + sandbox
    if len(name) <= USER_MAX:
        return name
    digest = hashlib.sha256(sandbox.encode()).hexdigest()[:6]
    keep = USER_MAX - len(USER_PREFIX) - len(digest) - 1
    return f"{USER_PREFIX}{sandbox[:keep].rstrip('-')}-{digest}"


def parse_subids(text: str) -> list[tuple[str, int, int]]:
    """`name:start:count` lines of /etc/subuid or /etc/subgid (see subuid(5))."""
    ranges = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            ranges.append((parts[0], int(parts[1]), int(parts[2])))
    return ranges


def free_subid_start(taken: Iterable[tuple[int, int]], ids_in_use: Iterable[int] = ()) -> int:
    """The first SUBID_COUNT-aligned block at or above SUBID_BASE that overlaps no taken
    (start, count) range and holds no id already in use (a uid or gid in the host's databases)."""
    spans = sorted((start, start + count) for start, count in taken)
    used = sorted(ids_in_use)
    start = SUBID_BASE
    while start + SUBID_COUNT <= SUBID_LIMIT:
        end = start + SUBID_COUNT
        if not any(a < end and start < b for a, b in spans) and not any(
            start <= i < end for i in used
        ):
            return start
        start += SUBID_COUNT
    raise KfboxError(
        "no free subordinate id range is left for a rootless Docker engine",
        fix="remove stray rootless Docker engines (their users are named kfbox-*) and try again",
    )


def parse_memory(text: str) -> int:
    """Bytes from Docker's notation: `256m`, `2g`, `512k`, `1073741824` (binary units)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)i?b?\s*", text.lower())
    if not match or int(match.group(1)) == 0:
        raise KfboxError(f"{text!r} is not an amount of memory", fix="write it like 512m or 4g")
    return int(match.group(1)) * 1024 ** "_kmgt".index(match.group(2) or "_")


# --- the public operations ---


def ensure_rootless_docker(
    sandbox: str, *, memory: str, cpus: float, pids: int = 4096
) -> RootlessDocker:
    """The sandbox's rootless Docker engine, answering on its socket: makes the user, its
    subordinate ids, its cgroup (limits applied on every call) and its folders, and starts the
    engine in that cgroup when it is not running. Returns at once when it already answers."""
    check_host()
    if cpus <= 0 or pids <= 0:
        raise KfboxError("a rootless Docker engine needs a positive CPU and process limit",
                         fix="set cpus above 0 and pids to at least a few hundred")
    limit = parse_memory(memory)
    with _host_lock():
        entry = _ensure_user(sandbox)
    engine = _engine_of(sandbox, entry)
    _ensure_dirs(engine)
    procs = _ensure_cgroup(engine.user, memory=limit, cpus=cpus, pids=pids)
    pid = _engine_pid(engine)
    if pid is None:
        pid = _start(engine, procs)
    _wait_for_ping(engine, pid)
    return engine


def stop_rootless_docker(sandbox: str) -> None:
    """Stop the engine (SIGTERM to its process group, then SIGKILL to whatever is left in its
    cgroup); the user, its data and its images stay."""
    user = engine_user(sandbox)
    pid = _recorded_pid(user)
    if pid is not None and _is_engine_process(pid, user):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        _wait(lambda: not _alive(pid) and not _cgroup_pids(user), STOP_TIMEOUT_S)
    # Containers run in sessions of their own (containerd's shims start them), outside the
    # engine's process group; the cgroup holds all of them and nothing else.
    for _ in range(50):
        left = _cgroup_pids(user)
        if not left:
            break
        for stray in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stray, signal.SIGKILL)
        time.sleep(0.1)
    if pid is not None:
        _reap(pid)
    (STATE_ROOT / user / "engine.pid").unlink(missing_ok=True)


def remove_rootless_docker(sandbox: str) -> None:
    """Stop the engine, then remove everything ensure_rootless_docker made for it: the cgroup, the
    user with its home (and so the engine's data), its subordinate ids and its folders.
    Refuses, touching nothing, when a user of that name was not made by this module."""
    user = engine_user(sandbox)
    entry = _passwd(user)
    if entry is not None and not _ours(entry):
        raise KfboxError(
            f"user {user} exists but is not a kfbox rootless Docker engine's",
            fix=f"rename or remove that user yourself; kfbox leaves it alone (comment: "
                f"{entry.pw_gecos!r})",
        )
    record = _read_record(user)
    stop_rootless_docker(sandbox)
    for path in reversed(_cgroup_dirs(user)):
        if path.is_dir():
            try:
                path.rmdir()
            except OSError as exc:
                raise KfboxError(f"cannot remove cgroup {path}: {exc.strerror}",
                                 fix="stop what still runs in it, then try again") from exc
    if entry is not None:
        with _host_lock():
            _remove_user(user)
    uid = entry.pw_uid if entry else record.get("uid")
    if isinstance(uid, int):
        shutil.rmtree(RUN_ROOT / str(uid), ignore_errors=True)
    shutil.rmtree(STATE_ROOT / user, ignore_errors=True)


def find_rootless_docker(sandbox: str) -> RootlessDocker | None:
    """The sandbox's rootless Docker engine when its user exists, running or not; never makes
    or starts anything (status and down ask this)."""
    entry = _passwd(engine_user(sandbox))
    return _engine_of(sandbox, entry) if entry is not None and _ours(entry) else None


def rootless_dockers() -> list[RootlessDocker]:
    """Every rootless Docker engine this host has a record of, running or not (strays too)."""
    found = []
    if STATE_ROOT.is_dir():
        for folder in sorted(STATE_ROOT.iterdir()):
            record = _read_record(folder.name)
            entry = _passwd(folder.name)
            if record.get("sandbox") and entry is not None and _ours(entry):
                found.append(_engine_of(str(record["sandbox"]), entry))
    return found


def load_images(engine: RootlessDocker, host_client: docker.DockerClient,
                tags: Iterable[str]) -> float:
    """Copy images from the host's engine into the rootless Docker engine, streaming one
    `docker save` of every tag (shared layers once, each tag named as asked: a whole-image save
    names only the image's first tag) into `docker load`, no file in between. Returns the
    seconds it took."""
    wanted = list(tags)
    started = time.monotonic()
    api = host_client.api
    response = api._get(api._url("/images/get"), params={"names": wanted}, stream=True)
    api._raise_for_status(response)
    with contextlib.closing(engine.client(timeout=600)) as client:
        # a generator: docker-py hands it to requests, which sends it chunked as it comes
        client.images.load(response.iter_content(chunk_size=4 * 1024 * 1024))
        for tag in wanted:
            client.images.get(tag)  # the load really tagged it
    return time.monotonic() - started


def record_layer_digests(engine: RootlessDocker, repository: str,
                         layers: Iterable[tuple[str, str]]) -> int:
    """Tell the rootless engine which compressed blob in REPOSITORY each of its layers is, as a
    pull of that repository would have: an image it loaded carries no such record, so its first
    push compresses every layer again to learn the digests, even when the registry already
    holds them. With the record, the push asks the registry for each blob and sends nothing it
    has. `layers` is (diff id, blob digest) pairs; returns how many were recorded.

    The record is the engine's distribution metadata (moby v20.10.24,
    distribution/metadata/v2_metadata_service.go: `v2metadata-by-diffid/<alg>/<hex>` holds a
    JSON list of {Digest, SourceRepository, HMAC}, `diffid-by-digest/<alg>/<hex>` the diff
    id; daemon/daemon.go keeps them in `<data-root>/image/<driver>/distribution`; both read
    from disk on each use). A wrong or missing record costs only time: distribution/push_v2.go
    asks the registry for the blob (`layerAlreadyExists`) and uploads when it is not there.
    Written by the engine user (tar run through setpriv), never by root: its workloads can
    reach that folder, and root must not follow what they leave in it."""
    pairs = list(layers)
    with contextlib.closing(engine.client()) as client:
        driver = client.info()["Driver"]
    entries = {}
    for diff_id, digest in pairs:
        entries[f"distribution/v2metadata-by-diffid/{_digest_key(diff_id)}"] = json.dumps(
            [{"Digest": digest, "SourceRepository": repository, "HMAC": ""}]).encode()
        entries[f"distribution/diffid-by-digest/{_digest_key(digest)}"] = diff_id.encode()
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, body in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(body), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(body))
    image_root = engine.home / ".local/share/docker/image" / driver
    done = subprocess.run(
        ["setpriv", f"--reuid={engine.uid}", f"--regid={engine.gid}", "--clear-groups", "--",
         "tar", "-x", "--no-same-owner", "-C", str(image_root)],
        input=data.getvalue(), capture_output=True, env={"PATH": PATH}, check=False)
    if done.returncode:
        raise KfboxError(f"recording layer digests in {engine.user}'s engine failed: "
                         f"{done.stderr.decode(errors='replace').strip()[:200]}")
    return len(pairs)


def _digest_key(digest: str) -> str:
    algorithm, hexa = digest.split(":", 1)
    if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexa):
        raise KfboxError(f"not a sha256 digest: {digest!r}")
    return f"{algorithm}/{hexa}"


# --- the host's checks ---


def check_host() -> None:
    """Raises KfboxError, with the fix, when this host cannot run a rootless Docker engine."""
    if os.geteuid() != 0:
        raise KfboxError("rootless Docker engines are made by root", fix="run kfbox as root")
    missing = [tool for tool in TOOLS if shutil.which(tool, path=PATH) is None]
    if not SCRIPT.is_file():
        missing.insert(0, str(SCRIPT))
    if missing:
        raise KfboxError(f"this host cannot run rootless Docker engines: {', '.join(missing)} "
                         "missing",
                         fix="run `kfbox provision` (it installs rootlesskit, uidmap and "
                             "slirp4netns)")
    for name, refused, fix in USERNS_SYSCTLS:
        value = _sysctl(name)
        if value is not None and value == refused:
            raise KfboxError(f"this host does not let unprivileged users make user namespaces "
                             f"({name.replace('/', '.')} = {value}), which a rootless Docker "
                             "engine needs", fix=fix)
    if TUN.exists() and TUN.stat().st_mode & 0o006 != 0o006:
        raise KfboxError(f"{TUN} is not open to unprivileged users, so slirp4netns cannot "
                         "give a rootless Docker engine a network",
                         fix="run `kfbox provision` (it makes /dev/net/tun 0666)")


def _sysctl(name: str) -> str | None:
    """A kernel setting under /proc/sys (`kernel/...`), or None where this kernel lacks it."""
    try:
        return (SYSCTL / name).read_text().strip()
    except OSError:
        return None


@contextlib.contextmanager
def _host_lock() -> Iterator[None]:
    """One kfbox process at a time picks users and subordinate id ranges."""
    STATE_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(STATE_ROOT / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --- the user ---


def _passwd(user: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        return None


def _ours(entry: pwd.struct_passwd) -> bool:
    return entry.pw_gecos.startswith(COMMENT)


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KfboxError(f"{argv[0]} failed: {(done.stderr or done.stdout).strip()}",
                         fix="see the message; the host's user database was left as it was")


def _ensure_user(sandbox: str) -> pwd.struct_passwd:
    user = engine_user(sandbox)
    entry = _passwd(user)
    if entry is None:
        # --system: a uid below UID_MIN, no aging, and no subordinate ids (shadow 4.13 gives
        # those to login users only): the range is chosen below instead.
        _run(["useradd", "--system", "--user-group", "--create-home",
              "--home-dir", str(HOMES / user), "--shell", "/usr/sbin/nologin",
              "--comment", f"{COMMENT} {sandbox}", user])
        entry = pwd.getpwnam(user)
    elif not _ours(entry):
        raise KfboxError(f"user {user} exists but is not a kfbox rootless Docker engine's",
                         fix="rename that user, or give the sandbox another name")
    elif entry.pw_gecos != f"{COMMENT} {sandbox}":
        raise KfboxError(f"user {user} belongs to another sandbox's rootless Docker engine "
                         f"({entry.pw_gecos!r})", fix="give the sandbox another name")
    # useradd makes homes 0755 on Debian (HOME_MODE unset): every other engine user's workloads
    # could then read this one's notebooks and engine data (docs/security.md).
    home = Path(entry.pw_dir)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o700)
    _ensure_subids(user)
    return entry


def _subid_files() -> tuple[Path, Path]:
    return Path("/etc/subuid"), Path("/etc/subgid")


def _ensure_subids(user: str) -> None:
    """The user's own SUBID_COUNT uids and gids, in a block no other line in either file and
    no account on the host uses, the same numbers in both files."""
    files = _subid_files()
    texts = [f.read_text() if f.exists() else "" for f in files]
    mine = [[r for r in parse_subids(t) if r[0] == user] for t in texts]
    if all(mine):
        return
    taken = [(start, count) for t in texts for _, start, count in parse_subids(t)]
    in_use = {p.pw_uid for p in pwd.getpwall()} | {p.pw_gid for p in pwd.getpwall()}
    start = free_subid_start(taken, in_use)
    span = f"{start}-{start + SUBID_COUNT - 1}"
    # usermod takes the same locks as useradd on both files (shadow's own, not ours).
    argv = ["usermod"]
    if not mine[0]:
        argv += ["--add-subuids", span]
    if not mine[1]:
        argv += ["--add-subgids", span]
    _run([*argv, user])


def _remove_user(user: str) -> None:
    argv = ["usermod"]
    for flag, path in zip(("--del-subuids", "--del-subgids"), _subid_files(), strict=True):
        text = path.read_text() if path.exists() else ""
        for _, start, count in (r for r in parse_subids(text) if r[0] == user):
            argv += [flag, f"{start}-{start + count - 1}"]
    if len(argv) > 1:
        _run([*argv, user])
    # -r: the home goes, and with it the engine's data root (its images and volumes).
    done = subprocess.run(["userdel", "--remove", user], capture_output=True, text=True,
                          check=False)
    # 12: the home could not be removed, said on stderr; anything else is a refusal.
    if done.returncode != 0 or _passwd(user) is not None:
        raise KfboxError(f"userdel {user} failed: {done.stderr.strip()}",
                         fix="stop what the user still runs, then remove the engine again")


# --- folders and the record ---


def _engine_of(sandbox: str, entry: pwd.struct_passwd) -> RootlessDocker:
    return RootlessDocker(
        sandbox=sandbox,
        user=entry.pw_name,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        home=Path(entry.pw_dir),
        socket=RUN_ROOT / str(entry.pw_uid) / "docker.sock",
    )


def _ensure_dirs(engine: RootlessDocker) -> None:
    # 0711: each engine user passes through to its own runtime folder but lists no other.
    RUN_ROOT.mkdir(mode=0o711, parents=True, exist_ok=True)
    RUN_ROOT.chmod(0o711)
    engine.runtime_dir.mkdir(mode=0o700, exist_ok=True)
    os.chown(engine.runtime_dir, engine.uid, engine.gid)
    engine.runtime_dir.chmod(0o700)
    engine.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = {"sandbox": engine.sandbox, "user": engine.user, "uid": engine.uid, "gid": engine.gid}
    (engine.state_dir / "engine.json").write_text(json.dumps(record, indent=2) + "\n")


def _read_record(user: str) -> dict[str, object]:
    try:
        return json.loads((STATE_ROOT / user / "engine.json").read_text())
    except (OSError, ValueError):
        return {}


# --- the cgroup ---


def _cgroup_v2() -> bool:
    """A unified host (systemd's default since about 2021): /sys/fs/cgroup is cgroup2 itself.
    A hybrid host like Debian without systemd mounts v1 controllers there, one folder each."""
    return (CGROUP_ROOT / "cgroup.controllers").exists()


def _v1_mounts() -> dict[str, Path]:
    """Controller → where its v1 hierarchy is mounted (`cpu` is often `cpu,cpuacct`)."""
    found: dict[str, Path] = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[2] == "cgroup":
            for option in fields[3].split(","):
                if option in V1_CONTROLLERS:
                    found.setdefault(option, Path(fields[1]))
    return found


def _cgroup_dirs(user: str) -> list[Path]:
    if _cgroup_v2():
        return [CGROUP_ROOT / user]
    mounts = _v1_mounts()
    return list(dict.fromkeys(mounts[c] / user for c in V1_CONTROLLERS if c in mounts))


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise KfboxError(f"cannot set {path} to {value}: {exc.strerror}",
                         fix="a limit below what the engine already uses needs the engine "
                             "stopped first (`kfbox down`)") from exc


def _ensure_cgroup(user: str, *, memory: int, cpus: float, pids: int) -> list[Path]:
    """Make the engine's cgroup and set its limits; return the cgroup.procs files a process
    joins. Every process the engine starts, containers included, inherits them, so the
    limits hold for the whole engine: rootless dockerd cannot enforce per-container limits on
    a v1 host without systemd (`docker info`: "Cgroup Driver: none")."""
    period = 100_000
    quota = max(1000, round(cpus * period))
    if _cgroup_v2():
        # Tested only by reading: this host is v1. Controllers must be enabled in the parent
        # before a child gets their files (cgroup-v2.rst, "Enabling and Disabling").
        for controller in V1_CONTROLLERS:
            _write(CGROUP_ROOT / "cgroup.subtree_control", f"+{controller}")
        group = CGROUP_ROOT / user
        group.mkdir(exist_ok=True)
        _write(group / "memory.max", str(memory))
        if (group / "memory.swap.max").exists():
            _write(group / "memory.swap.max", "0")
        _write(group / "pids.max", str(pids))
        _write(group / "cpu.max", f"{quota} {period}")
        return [group / "cgroup.procs"]
    mounts = _v1_mounts()
    missing = [c for c in V1_CONTROLLERS if c not in mounts]
    if missing:
        raise KfboxError(f"this host mounts no cgroup for {', '.join(missing)}",
                         fix="mount the cgroup v1 controllers (Debian: cgroupfs-mount)")
    mem, pid, cpu, acct = (mounts[c] / user for c in V1_CONTROLLERS)
    for group in dict.fromkeys((mem, pid, cpu, acct)):
        group.mkdir(exist_ok=True)
    swap = mem / "memory.memsw.limit_in_bytes"  # only with swap accounting on
    if swap.exists():  # memsw >= memory at every step: lift it, set memory, then lower it
        _write(swap, "-1")
    _write(mem / "memory.limit_in_bytes", str(memory))
    if swap.exists():
        _write(swap, str(memory))
    _write(pid / "pids.max", str(pids))
    _write(cpu / "cpu.cfs_period_us", str(period))
    _write(cpu / "cpu.cfs_quota_us", str(quota))
    return [group / "cgroup.procs" for group in dict.fromkeys((mem, pid, cpu, acct))]


def _group(user: str, controller: str) -> Path:
    """The engine's cgroup folder holding `controller`'s files: the one unified folder (v2), or
    the folder under that controller's v1 hierarchy (where Debian mounts it, when it is not
    mounted: a folder that does not exist, read as nothing)."""
    if _cgroup_v2():
        return CGROUP_ROOT / user
    return _v1_mounts().get(controller, CGROUP_ROOT / controller) / user


def engine_limits(user: str) -> dict[str, float]:
    """The limits the engine's cgroup holds now, read back from it: memory (bytes), cpus, pids;
    an empty dict when it has no cgroup."""
    v2 = _cgroup_v2()
    try:
        cpu, memory, pids = (_group(user, c) for c in ("cpu", "memory", "pids"))
        if v2:
            quota, period = (cpu / "cpu.max").read_text().split()
        else:
            quota, period = ((cpu / f"cpu.cfs_{name}_us").read_text()
                             for name in ("quota", "period"))
        limit = (memory / ("memory.max" if v2 else "memory.limit_in_bytes")).read_text()
        return {"memory": float(limit), "cpus": int(quota) / int(period),
                "pids": float((pids / "pids.max").read_text())}
    except (OSError, ValueError):
        return {}


def usage_files(user: str) -> tuple[tuple[Path, str], tuple[Path, str, float]]:
    """Where the engine's cgroup counts what the whole engine (its daemons and every container)
    uses: (memory.stat, its resident-memory key), (the CPU time file, its key or "" for the whole
    file, seconds per unit). Rootless dockerd makes no cgroup per container here."""
    memory, cpu = _group(user, "memory"), _group(user, "cpuacct")
    if _cgroup_v2():
        return (memory / "memory.stat", "anon"), (cpu / "cpu.stat", "usage_usec", 1e-6)
    # total_rss: the hierarchy's, though the engine's processes are all in the group itself.
    return (memory / "memory.stat", "total_rss"), (cpu / "cpuacct.usage", "", 1e-9)


def _cgroup_pids(user: str) -> set[int]:
    found: set[int] = set()
    for group in _cgroup_dirs(user):
        with contextlib.suppress(OSError):
            found |= {int(p) for p in (group / "cgroup.procs").read_text().split()}
    return found


# --- the engine process ---


def _recorded_pid(user: str) -> int | None:
    try:
        return int((STATE_ROOT / user / "engine.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _is_engine_process(pid: int, user: str) -> bool:
    """Whether `pid` is still the sandbox's engine: alive, run by the engine user, and in the
    engine's cgroup. A pid in a stale file may since have gone to anything else."""
    entry = _passwd(user)
    if entry is None or not _alive(pid):
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    uid_line = next((ln for ln in status.splitlines() if ln.startswith("Uid:")), "")
    return uid_line.split()[1:2] == [str(entry.pw_uid)] and pid in _cgroup_pids(user)


def _engine_pid(engine: RootlessDocker) -> int | None:
    pid = _recorded_pid(engine.user)
    return pid if pid is not None and _is_engine_process(pid, engine.user) else None


_children: dict[int, subprocess.Popen] = {}
"""Engines this process started, kept so stop can reap them (no zombie, no ResourceWarning)."""

# Runs as root: joins the engine's cgroups, so that everything exec'd after inherits them, then
# becomes the engine user. `$$` stays this process's pid through both execs.
_JOIN = 'for f in $KFBOX_CGROUP_PROCS; do echo $$ > "$f" || exit 1; done; exec "$@"'


def _start(engine: RootlessDocker, procs: list[Path]) -> int:
    argv = [
        "/bin/sh", "-c", _JOIN, "kfbox-rootless-docker",
        # setpriv, not runuser: no PAM session and no root parent left waiting, so the pid
        # recorded is the engine's own (rootlesskit's) and runs as the engine user. Without
        # --keep-caps, the switch from uid 0 drops every capability (capabilities(7)).
        "setpriv", f"--reuid={engine.uid}", f"--regid={engine.gid}", "--init-groups", "--",
        "env", "-i", f"HOME={engine.home}", f"USER={engine.user}", f"LOGNAME={engine.user}",
        f"XDG_RUNTIME_DIR={engine.runtime_dir}", f"PATH={PATH}", "LANG=C.UTF-8",
        str(SCRIPT),
        # dockerd's rootless defaults put these in the same places ($XDG_RUNTIME_DIR,
        # ~/.local/share/docker); naming them keeps this module the one that says where.
        f"--host={engine.docker_host}",
        f"--data-root={engine.home / '.local/share/docker'}",
        f"--exec-root={engine.runtime_dir / 'docker'}",
        f"--pidfile={engine.runtime_dir / 'docker.pid'}",
    ]
    engine.socket.unlink(missing_ok=True)  # a stale socket must not look like an answer
    with open(engine.log, "ab") as log:
        log.write(f"--- kfbox: starting the rootless Docker engine at {time.ctime()}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=engine.home, start_new_session=True,
            env={"PATH": PATH, "KFBOX_CGROUP_PROCS": " ".join(map(str, procs))},
        )
    _children[proc.pid] = proc
    (engine.state_dir / "engine.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def _ping(sock: Path, timeout: float = 2.0) -> bool:
    """GET /_ping on a unix socket with the standard library: the quickest "answers" check."""
    conn = _UnixHTTP(sock, timeout)
    try:
        conn.request("GET", "/_ping")
        answer = conn.getresponse()
        return answer.status == 200 and answer.read().strip() == b"OK"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _wait_for_ping(engine: RootlessDocker, pid: int) -> None:
    deadline = time.monotonic() + PING_TIMEOUT_S
    while not _ping(engine.socket, timeout=1.0):
        if not _alive(pid) or time.monotonic() > deadline:
            why = "exited" if not _alive(pid) else f"did not answer in {PING_TIMEOUT_S:.0f} s"
            if _alive(pid):
                stop_rootless_docker(engine.sandbox)
            _reap(pid)
            raise KfboxError(
                f"the rootless Docker engine of {engine.sandbox} {why}: {_log_tail(engine.log)}",
                fix=f"read {engine.log}; `kfbox provision` installs what it needs",
            )
        time.sleep(0.05)


def _log_tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    # the script runs under `set -x`: its traced commands are noise next to dockerd's words
    useful = [ln for ln in text if not ln.startswith("+ ")] or text
    return " | ".join(ln.strip() for ln in useful[-lines:])


def _wait(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _reap(pid: int) -> None:
    proc = _children.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
