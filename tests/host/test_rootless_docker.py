"""A sandbox's rootless Docker engine, for real: dockerd run by a user made for the sandbox. The
escape table of docs/security.md is attempted from a container that holds the engine's socket,
as a notebook will, and each attempt must be refused by the engine or confined (checked on the
host too). Also: two engines side by side, the per-engine limits, stop and start, and removal."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from kfbox.host import rootless_docker as se
from kfbox.host.docker_engine import LABEL
from kfbox.host.errors import KfboxError
from kfbox.host.images.base import ensure_base_image
from kfbox.host.progress import quiet_reporter
from kfbox.host.usage import UsageSampler, sandbox_memory_mib
from tests.support import escapes
from tests.support.ci import unreachable
from tests.support.escape_table import ATTEMPTS, attempt_spec, judge

e2e = pytest.mark.e2e

# --- no engine needed: names, ranges, amounts ---


def test_user_names_fit_and_stay_apart() -> None:
    assert se.engine_user("demo") == "kfbox-demo"
    long_a, long_b = "a" * 29 + "-seat-1", "a" * 29 + "-seat-2"
    names = {se.engine_user(long_a), se.engine_user(long_b)}
    assert len(names) == 2
    assert all(len(n) <= se.USER_MAX and n.startswith("kfbox-aaaa") for n in names)
    assert se.engine_user(long_a) == se.engine_user(long_a)  # stable: derived, never random
    with pytest.raises(KfboxError):
        se.engine_user("../etc")


def test_subid_ranges_overlap_nothing() -> None:
    base, count = se.SUBID_BASE, se.SUBID_COUNT
    assert se.free_subid_start([(100000, 65536)]) == base
    assert se.free_subid_start([(base, count), (base + 2 * count, count)]) == base + count
    assert se.free_subid_start([(base + 10, 5)]) == base + count  # a stray line inside a block
    assert se.free_subid_start([], ids_in_use=[base + 7]) == base + count
    assert se.parse_subids("a:100000:65536\n# no\nb:1:x\n") == [("a", 100000, 65536)]


def test_memory_amounts() -> None:
    assert se.parse_memory("256m") == 256 * 2**20
    assert se.parse_memory("2G") == 2 * 2**30
    assert se.parse_memory("4096") == 4096
    for bad in ("", "0", "lots", "-1m"):
        with pytest.raises(KfboxError):
            se.parse_memory(bad)


@pytest.mark.parametrize(("setting", "value"), [
    ("user/max_user_namespaces", "0"),
    ("kernel/unprivileged_userns_clone", "0"),
    ("kernel/apparmor_restrict_unprivileged_userns", "1"),
])
def test_a_kernel_that_refuses_user_namespaces_is_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, value: str
) -> None:
    if os.geteuid() != 0 or any(shutil.which(t, path=se.PATH) is None for t in se.TOOLS):
        unreachable("the userns checks come after root and the tools")
    (tmp_path / setting).parent.mkdir(parents=True)
    (tmp_path / setting).write_text(f"{value}\n")
    monkeypatch.setattr(se, "SYSCTL", tmp_path)
    with pytest.raises(KfboxError) as caught:
        se.check_host()
    assert f"({setting.replace('/', '.')} = {value})" in caught.value.line()
    assert "sysctl -w" in (caught.value.fix or "")
    (tmp_path / setting).write_text("15000\n" if value == "0" else "0\n")
    se.check_host()  # the same kernel allowing them passes


# --- the real thing ---

RUN = secrets.token_hex(3)


@dataclass
class Loaded:
    daemon: se.RootlessDocker
    image: str
    start_s: float
    load_s: float
    made: list[str] = field(default_factory=list)


def _require_root() -> None:
    if os.geteuid() != 0:
        unreachable("rootless Docker engines need root (users, cgroups)")
    try:
        se.check_host()
    except KfboxError as exc:
        unreachable(exc.line())


@contextlib.contextmanager
def _loaded(sandbox: str, host: docker.DockerClient, **limits) -> Iterator[Loaded]:
    image = ensure_base_image(quiet_reporter(), host)
    try:
        started = time.monotonic()
        engine = se.ensure_rootless_docker(sandbox, **limits)
        start_s = time.monotonic() - started
        load_s = se.load_images(engine, host, [image])
        print(f"\n{sandbox}: engine answered in {start_s:.2f} s, {image} loaded in {load_s:.1f} s")
        yield Loaded(engine, image, start_s, load_s)
    finally:
        se.remove_rootless_docker(sandbox)


@pytest.fixture(scope="module")
def engine(docker_client) -> Iterator[Loaded]:
    """The engine the escapes are tried on: room for two containers at once and their probes."""
    _require_root()
    with _loaded(f"t-rootless-{RUN}", docker_client, memory="1g", cpus=1.0, pids=1000) as made:
        yield made


@pytest.fixture(scope="module")
def small_engine(docker_client) -> Iterator[Loaded]:
    """A second engine beside the first, with small limits to hit."""
    _require_root()
    with _loaded(f"t-rootless-{RUN}-b", docker_client, memory="256m", cpus=0.5, pids=100) as made:
        yield made


def labels(engine: Loaded) -> dict[str, str]:
    return {LABEL: engine.daemon.sandbox}


def run_in_notebook(engine: Loaded, spec: dict) -> dict:
    """`escapes.attempt` in a container of the rootless engine, holding the engine's socket at
    the notebook's path, as container root, which is the engine user on the host."""
    client = engine.daemon.client()
    container = client.containers.run(
        engine.image, ["python3", "-c", escapes.BOOT, "attempt", json.dumps(spec)],
        environment={"KFBOX_PROBE": escapes.source(),
                     "DOCKER_HOST": f"unix://{escapes.ENGINE_SOCKET}"},
        volumes={str(engine.daemon.socket): {"bind": escapes.ENGINE_SOCKET, "mode": "rw"}},
        labels=labels(engine), network_mode="none", detach=True,
    )
    try:
        code = container.wait(timeout=300)["StatusCode"]
        output = container.logs().decode(errors="replace").strip()
    finally:
        container.remove(force=True)
        client.close()
    assert code == 0, output[-3000:]
    return json.loads(output.splitlines()[-1])


@e2e
@pytest.mark.parametrize("name", [a[0] for a in ATTEMPTS])
def test_escape_is_refused_or_confined(engine, canary, marker, record_property, name) -> None:
    spec, token = attempt_spec(name, RUN, engine.image, labels(engine), canary, marker)
    before = canary.accepted

    result = run_in_notebook(engine, spec)

    outcome, escaped = judge(result, engine.daemon.uid, token, canary, before)
    record_property("outcome", outcome)
    print(f"\n{name}: {outcome}")
    assert not escaped, f"{name} escaped: {escaped} ({outcome})"
    client = engine.daemon.client()
    mine = {"label": f"{LABEL}={engine.daemon.sandbox}"}
    assert not client.containers.list(all=True, filters=mine)
    made = {v["Name"] for v in spec["volumes"]}
    assert not [v for v in client.volumes.list() if v.name in made]


# --- the engine itself ---


def engine_processes(engine: se.RootlessDocker) -> dict[int, tuple[str, int]]:
    """pid → (command name, real uid) of everything in the engine's cgroup."""
    found = {}
    for pid in se._cgroup_pids(engine.user):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            fields = dict(line.split(":", 1) for line in status if ":" in line)
            found[pid] = (fields["Name"].strip(), int(fields["Uid"].split()[0]))
    return found


@e2e
def test_engine_runs_as_the_engine_user_behind_a_closed_socket(engine, record_property) -> None:
    daemon = engine.daemon
    record_property("start_s", round(engine.start_s, 2))
    record_property("base_image_load_s", round(engine.load_s, 1))
    assert daemon.answers()
    info = daemon.client().info()
    assert "name=rootless" in info["SecurityOptions"]
    processes = engine_processes(daemon)
    assert "dockerd" in {name for name, _ in processes.values()}
    assert {uid for _, uid in processes.values()} == {daemon.uid}, processes  # never 0
    entry = pwd.getpwnam(daemon.user)
    assert entry.pw_gecos == f"{se.COMMENT} {daemon.sandbox}" and entry.pw_uid != 0
    group = _group("daemon")  # the host engine's socket group
    assert group is None or group.gr_gid not in os.getgrouplist(daemon.user, daemon.gid)
    for folder in (daemon.home, daemon.runtime_dir):
        stat = folder.stat()
        assert (stat.st_mode & 0o777, stat.st_uid) == (0o700, daemon.uid), folder
    stat = daemon.state_dir.stat()
    assert (stat.st_mode & 0o777, stat.st_uid) == (0o700, 0)  # root's: the pid file and log
    # nobody (another unprivileged user) cannot use the socket
    check = ("import socket; s = socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect(%r); print('connected')\nexcept OSError as e: print(e.errno)")
    nobody = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
         "-c", check % str(daemon.socket)], capture_output=True, text=True, check=True)
    assert nobody.stdout.strip() == "13", nobody.stdout  # EACCES
    # the limits are the engine's cgroup's
    assert se.engine_limits(daemon.user) == {"memory": 2**30, "cpus": 1.0, "pids": 1000}
    # a second ensure with the engine answering returns at once, the same engine
    pid = se._recorded_pid(daemon.user)
    assert se.ensure_rootless_docker(daemon.sandbox, memory="1g", cpus=1.0, pids=1000) == daemon
    assert se._recorded_pid(daemon.user) == pid  # not started again


def _group(name: str):
    import grp

    try:
        return grp.getgrnam(name)
    except KeyError:
        return None


@e2e
def test_two_engines_see_only_their_own(engine, small_engine) -> None:
    a, b = engine.daemon, small_engine.daemon
    made = []
    try:
        for s in (engine, small_engine):
            client = s.daemon.client()
            made.append((client.volumes.create(f"kfbox-own-{s.daemon.sandbox}", labels=labels(s)),
                         client.networks.create(f"kfbox-own-{s.daemon.sandbox}", labels=labels(s)),
                         client.containers.create(s.image, "true", labels=labels(s),
                                                  name=f"kfbox-own-{s.daemon.sandbox}")))
        for s, other in ((engine, small_engine), (small_engine, engine)):
            client = s.daemon.client()
            theirs = f"kfbox-own-{other.daemon.sandbox}"
            assert theirs not in {v.name for v in client.volumes.list()}
            assert theirs not in {n.name for n in client.networks.list()}
            assert theirs not in {c.name for c in client.containers.list(all=True)}
            assert f"kfbox-own-{s.daemon.sandbox}" in {v.name for v in client.volumes.list()}
        # from B's containers: A's socket, bound directly or reached through a bind of /
        client = b.client()
        findings = []
        for binds in ([f"{a.socket}:/a.sock:rw"], ["/:/host:rw"]):
            try:
                out = client.containers.run(
                    small_engine.image,
                    ["python3", "-c", escapes.BOOT, "probe", json.dumps({
                        "marker": "none", "engines": ["/a.sock", f"/host{a.socket}"],
                        "list": [f"/host{a.home}", f"/host{a.runtime_dir}"],
                        "read": [f"/host{a.home}/.local/share/docker/volumes/metadata.db"]})],
                    environment={"KFBOX_PROBE": escapes.source()}, volumes=binds,
                    labels=labels(small_engine), network_mode="none", remove=True)
            except docker.errors.APIError as exc:
                findings.append(("refused", str(exc.explanation)))
                continue
            found = json.loads(out.decode().strip().splitlines()[-1])
            findings.append(("confined", found["engines"], found["list"], found["read"]))
            assert not [v for v in found["engines"].values() if v.startswith("answered")]
            assert not [v for v in found["list"].values() if v.startswith("listed")]
            assert not [v for v in found["read"].values() if v == "read"]
        print(f"\nengine B reaching engine A: {findings}")
    finally:
        for volume, network, container in made:
            container.remove(force=True)
            network.remove()
            volume.remove(force=True)


def run_to_end(engine: Loaded, command: list[str]) -> tuple[int, str]:
    """(exit code, output) of `command` in a workload of `engine`, removed afterwards."""
    container = engine.daemon.client().containers.run(
        engine.image, command, labels=labels(engine), network_mode="none", detach=True)
    try:
        code = container.wait(timeout=120)["StatusCode"]
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


@e2e
def test_the_engine_limits_hold(small_engine, record_property) -> None:
    code, out = run_to_end(small_engine,
                           ["python3", "-c", "b = b'x' * (600 << 20); print('allocated')"])
    record_property("memory_hog", f"exit {code}")
    print(f"\nallocating 600 MiB in a 256 MiB engine: exit {code} {out.strip()[-200:]}")
    assert code != 0 and "allocated" not in out, (code, out)
    code, out = run_to_end(
        small_engine, ["sh", "-c", "for i in $(seq 300); do sleep 20 & done; echo started-all"])
    record_property("fork_bomb", f"exit {code}: {out.strip()[-200:]}")
    print(f"300 processes in an engine of 100: exit {code} {out.strip()[-200:]}")
    assert "started-all" not in out and ("fork" in out.lower() or "resource" in out.lower()), out
    assert small_engine.daemon.answers()  # the sandbox's engine survives its own workloads


@e2e
def test_what_the_engine_uses_is_counted_for_its_sandbox(engine, docker_client) -> None:
    """A sandbox in a rootless engine is measured by the engine's one cgroup (workshop seats'
    and bench's figures): a workload's memory and CPU time show in it, and nothing of it shows
    in the host's engine."""
    idle = sandbox_memory_mib(docker_client, engine.daemon.sandbox)
    assert idle > 0  # the engine's own daemons
    hog = ("import time\nb = b'x' * (200 << 20)\nend = time.time() + 2\n"
           "while time.time() < end: pass")
    with UsageSampler(docker_client, engine.daemon.sandbox) as sampler:
        code, out = run_to_end(engine, ["python3", "-c", hog])
    assert code == 0, out
    print(f"\nidle {idle:.0f} MiB, peak {sampler.peak_memory_mib:.0f} MiB, "
          f"{sampler.cpu_seconds:.1f} CPU s")
    assert sampler.peak_memory_mib >= idle + 150 and sampler.cpu_seconds >= 1.5


@e2e
def test_stop_then_start_keeps_data(engine, record_property) -> None:
    daemon = engine.daemon
    client = daemon.client()
    volume = client.volumes.create(f"kfbox-keep-{RUN}", labels=labels(engine))
    try:
        se.stop_rootless_docker(daemon.sandbox)
        assert not daemon.answers()
        assert not engine_processes(daemon)
        started = time.monotonic()
        assert se.ensure_rootless_docker(daemon.sandbox, memory="1g", cpus=1.0, pids=1000) == daemon
        record_property("second_start_s", round(time.monotonic() - started, 2))
        print(f"\nsecond start: {time.monotonic() - started:.2f} s")
        client = daemon.client()
        assert volume.name in {v.name for v in client.volumes.list()}
        client.images.get(engine.image)
        assert client.containers.run(engine.image, ["true"], remove=True, network_mode="none",
                                     labels=labels(engine)) == b""
    finally:
        daemon.client().volumes.get(volume.name).remove(force=True)


def _subids(user: str) -> list[tuple[str, int, int]]:
    return [r for f in ("/etc/subuid", "/etc/subgid")
            for r in se.parse_subids(Path(f).read_text()) if r[0] == user]


@e2e
def test_remove_leaves_nothing(record_property) -> None:
    _require_root()
    sandbox = f"t-rootless-{RUN}-gone-with-a-name-too-long-for-a-user"
    engine = se.ensure_rootless_docker(sandbox, memory="512m", cpus=0.5, pids=200)
    try:
        assert len(engine.user) <= 32 and engine.answers()
        ranges = _subids(engine.user)
        assert len(ranges) == 2 and ranges[0][1:] == ranges[1][1:]
        start, count = ranges[0][1:]
        others = [(s, c) for f in ("/etc/subuid", "/etc/subgid")
                  for u, s, c in se.parse_subids(Path(f).read_text()) if u != engine.user]
        assert all(start + count <= s or s + c <= start for s, c in others)
        assert engine in se.rootless_dockers()
    finally:
        se.remove_rootless_docker(sandbox)
    assert se._passwd(engine.user) is None and not _subids(engine.user)
    assert not [p for p in se._cgroup_dirs(engine.user) if p.exists()]
    assert not engine.runtime_dir.exists() and not engine.home.exists()
    assert not engine.state_dir.exists()
    assert engine not in se.rootless_dockers()
    leftovers = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            uid = int(next(ln for ln in status.read_text().splitlines()
                           if ln.startswith("Uid:")).split()[1])
            if uid == engine.uid or start <= uid < start + count:
                leftovers.append(status.parent.name)
    assert not leftovers
    se.remove_rootless_docker(sandbox)  # removing again is a no-op


@e2e
def test_a_user_it_did_not_make_is_never_touched() -> None:
    _require_root()
    sandbox = f"t-rootless-{RUN}-foreign"
    user = se.engine_user(sandbox)
    subprocess.run(["useradd", "--system", "--comment", "someone else", user], check=True)
    try:
        with pytest.raises(KfboxError, match="not a kfbox rootless Docker engine"):
            se.remove_rootless_docker(sandbox)
        with pytest.raises(KfboxError, match="not a kfbox rootless Docker engine"):
            se.ensure_rootless_docker(sandbox, memory="256m", cpus=0.5)
        assert se._passwd(user).pw_gecos == "someone else"
        assert not _subids(user)
    finally:
        subprocess.run(["userdel", user], check=True)


LAYERS = [(f"sha256:{'a' * 63}{i}", f"sha256:{'b' * 63}{i}") for i in range(3)]
"""Three (diff id, blob digest) pairs for the engine's distribution record."""


@e2e
def test_layer_digests_are_recorded_as_a_pull_would_by_the_engine_user(engine) -> None:
    daemon = engine.daemon
    distribution = daemon.home / ".local/share/docker/image/overlay2/distribution"
    assert se.record_layer_digests(daemon, "127.0.0.1:5000/kfbox/runtime", LAYERS) == 3
    for diff_id, digest in LAYERS:
        record = distribution / "v2metadata-by-diffid/sha256" / diff_id.split(":")[1]
        assert json.loads(record.read_text()) == [
            {"Digest": digest, "SourceRepository": "127.0.0.1:5000/kfbox/runtime", "HMAC": ""}]
        back = distribution / "diffid-by-digest/sha256" / digest.split(":")[1]
        assert back.read_text() == diff_id
        assert (record.stat().st_uid, back.stat().st_uid) == (daemon.uid, daemon.uid)


@e2e
def test_a_link_planted_in_the_engines_record_never_leads_root_elsewhere(
    engine, tmp_path: Path
) -> None:
    """What the notebook starts can write the engine user's home: a link it leaves where the
    record goes must not make kfbox (root) write through it."""
    daemon = engine.daemon
    target = tmp_path / "root-only"  # root's, 0700: the engine user cannot write in it
    target.mkdir(mode=0o700)
    planted = daemon.home / ".local/share/docker/image/overlay2/distribution/diffid-by-digest"
    moved = planted.with_name("diffid-by-digest.kept")
    if planted.exists():
        planted.rename(moved)
    os.symlink(target, planted)
    try:
        with pytest.raises(KfboxError, match="recording layer digests"):
            se.record_layer_digests(daemon, "127.0.0.1:5000/kfbox/runtime", LAYERS)
        assert list(target.iterdir()) == []
    finally:
        planted.unlink()
        if moved.exists():
            moved.rename(planted)


def test_a_digest_that_is_not_sha256_hex_is_refused_before_anything_is_written() -> None:
    for bad in ("sha256:../../../etc/passwd", "md5:" + "a" * 32, "sha256:" + "A" * 64):
        with pytest.raises(KfboxError, match="not a sha256 digest"):
            se._digest_key(bad)
