"""A Docker engine of the test suite's own, for the tests that stop, kill or starve an engine
(tests/e2e/faults): never the machine's.

Everything it has is its own, so the machine's engine and what runs in it are never touched:

- a `dockerd` started as a child of pytest (stopped, and restarted, by that process's pid only),
  with its own `--config-file` (an empty one: the machine's /etc/docker/daemon.json is not read),
  socket, pid file and exec root under RUN_ROOT/<slot>/, and data root (image store, volumes,
  containers) under DATA_ROOT/<slot>/;
- its own default bridge (`kfbox-test<slot>`, 10.<slot>.255.1/24, made here because dockerd
  makes only `docker0` itself, which is the machine engine's) and an address pool of its own for
  the networks kfbox makes (10.<slot>.0.0/16, /24 each), so no subnet overlaps the machine's;
- `--iptables=false`, `--ip-masq=false`, `--ip-forward=false`: it leaves the machine's firewall
  rules and sysctls to the machine's engine (a second dockerd managing the same DOCKER chains
  would rewrite the first one's). Where bridged traffic passes the firewall
  (net.bridge.bridge-nf-call-iptables = 1, and the machine's engine sets FORWARD's policy to
  DROP), containers on one of its networks could not reach each other (a training job's nodes,
  a build and the wheel server), so one chain of its own, KFBOX-TEST-<slot>, accepts bridged
  traffic inside 10.<slot>.0.0/16 only, jumped to from the top of FORWARD; both go with it;
- its own containerd namespaces and cgroup parent.

A slot (10..<slot>, the bridge's and the chain's names) is taken under a lock and is free when
no route overlaps its /16 and no bridge has its name, so two sessions on one machine never
share one. A slot whose pytest died without cleaning up is cleaned by the next session.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import DockerException

RUN_ROOT = Path(os.environ.get("KFBOX_TEST_ENGINE_RUN", "/run/kfbox-test-engine"))
"""Socket, pid file, exec root and log of each session's engine (small; tmpfs is fine)."""
DATA_ROOT = Path(os.environ.get("KFBOX_TEST_ENGINE_DATA", "/var/tmp/kfbox-test-engine"))
"""Each session's engine's data root: the copied images, the tests' containers and volumes
(about 2.5 GB). On disk, not tmpfs; removed when the session ends."""
SLOTS = range(200, 250)
START_S = 60
STOP_S = 60


class EngineError(RuntimeError):
    """The suite's engine could not be started (the reason, with dockerd's last log lines)."""


def _sh(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=check)


def _process_start(pid: int) -> str | None:
    """A process's start time (clock ticks since boot), which tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(owner: str) -> bool:
    """Whether the process `owner` ("pid start") still runs."""
    pid, _, start = owner.partition(" ")
    return pid.isdigit() and _process_start(int(pid)) == start


def _bridge_filtered() -> bool:
    """Whether bridged IPv4 traffic passes iptables (br_netfilter), so it needs a rule."""
    flag = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    filtered = flag.is_file() and flag.read_text().strip() == "1"
    return filtered and shutil.which("iptables") is not None


def _routes() -> list[ipaddress.IPv4Network]:
    done = _sh("ip", "-4", "-j", "route", "show", "table", "all", check=False)
    found = []
    for route in json.loads(done.stdout or "[]"):
        with contextlib.suppress(ValueError):
            found.append(ipaddress.ip_network(route.get("dst", ""), strict=False))
    return found


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _unmount_under(*roots: Path) -> None:
    """Lazily unmount whatever a dead engine left mounted under `roots` (deepest first)."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    prefixes = tuple(f"{root}/" for root in roots)
    for mount in sorted((m for m in mounts if m.startswith(prefixes)), key=len, reverse=True):
        _sh("umount", "-l", mount, check=False)


@dataclass
class SuiteEngine:
    """One session's Docker engine (see the module's doc)."""

    slot: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started: bool = False
    """Whether it ran before in this session: its data root then holds its networks."""

    @property
    def run_dir(self) -> Path:
        return RUN_ROOT / str(self.slot)

    @property
    def data_root(self) -> Path:
        return DATA_ROOT / str(self.slot)

    @property
    def host(self) -> str:
        """Its address for DOCKER_HOST."""
        return f"unix://{self.run_dir}/docker.sock"

    @property
    def bridge(self) -> str:
        return f"kfbox-test{self.slot}"

    @property
    def chain(self) -> str:
        return f"KFBOX-TEST-{self.slot}"

    @property
    def subnet(self) -> str:
        return f"10.{self.slot}.0.0/16"

    @property
    def log(self) -> Path:
        return self.run_dir / "dockerd.log"

    def client(self, timeout: int = 120) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def command(self) -> list[str]:
        config = self.run_dir / "daemon.json"
        # A restarted dockerd finds its default "bridge" network in its data root and deletes
        # it; when it was given address pools it then also deletes the interface named
        # docker0 (moby, daemon/daemon_unix.go, configureNetworking: "Clear stale bridge
        # network" -> removeDefaultBridgeInterface), whatever --bridge says: that is the
        # machine engine's bridge, and every container of the person's on it would lose its
        # network. So the pools are given at the first start only; a restart keeps the
        # networks it already has (tests/e2e/faults/conftest.py runs the restart test last).
        pools = [] if self.started else [f"--default-address-pool=base={self.subnet},size=24"]
        return [
            shutil.which("dockerd") or "dockerd",
            f"--config-file={config}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.run_dir / 'exec'}",
            f"--pidfile={self.run_dir / 'docker.pid'}",
            f"--host={self.host}",
            f"--bridge={self.bridge}",
            *pools,
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            f"--containerd-namespace=kfbox-test-{self.slot}",
            f"--containerd-plugins-namespace=kfbox-test-{self.slot}-plugins",
            f"--cgroup-parent=kfbox-test-engine-{self.slot}",
            "--log-level=warn",
        ]

    # -- the network of its own -------------------------------------------------------------

    def _make_network(self) -> None:
        if not _link_exists(self.bridge):
            _sh("ip", "link", "add", "name", self.bridge, "type", "bridge")
        _sh("ip", "addr", "replace", f"10.{self.slot}.255.1/24", "dev", self.bridge)
        _sh("ip", "link", "set", self.bridge, "up")
        if not _bridge_filtered():
            return
        if _sh("iptables", "-w", "-N", self.chain, check=False).returncode != 0:
            _sh("iptables", "-w", "-F", self.chain)
        _sh("iptables", "-w", "-A", self.chain, "-s", self.subnet, "-d", self.subnet,
            "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT")
        _sh("iptables", "-w", "-I", "FORWARD", "1", "-j", self.chain)

    def _remove_network(self) -> None:
        if shutil.which("iptables"):
            while _sh("iptables", "-w", "-D", "FORWARD", "-j", self.chain,
                      check=False).returncode == 0:
                pass
            _sh("iptables", "-w", "-F", self.chain, check=False)
            _sh("iptables", "-w", "-X", self.chain, check=False)
        if _link_exists(self.bridge):
            _sh("ip", "link", "delete", self.bridge, check=False)

    # -- the daemon ---------------------------------------------------------------------------

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start its dockerd (again) and wait until it answers."""
        if self.running():
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "daemon.json").write_text("{}\n")
        self.data_root.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches pytest, which stops it in order
            )
        deadline = time.monotonic() + START_S
        while True:
            with contextlib.suppress(DockerException):
                self.client(timeout=5).ping()
                self.started = True
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
                raise EngineError("the suite's Docker engine did not start: " + " | ".join(tail))
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop its dockerd (SIGTERM to its own pid; it stops its containers), SIGKILL after
        STOP_S."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        """Stop it and remove all it had: data root, run folder, bridge, firewall chain."""
        self.stop()
        _unmount_under(self.data_root, self.run_dir)
        # rm is quicker than rmtree over an image store's many files; never crosses a mount
        _sh("rm", "-rf", "--one-file-system", str(self.data_root), check=False)
        self._remove_network()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- images ---------------------------------------------------------------------------------

    def copy_images(self, source_host: str, tags: list[str]) -> None:
        """`docker save` from the engine at `source_host` piped to `docker load` here: the
        source engine only reads its images."""
        cli = shutil.which("docker")
        if cli is None:
            raise EngineError("no `docker` command to copy images with (run `kfbox provision`)")
        save = subprocess.Popen([cli, "-H", source_host, "save", *tags],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert save.stdout is not None
        load = subprocess.run([cli, "-H", self.host, "load", "-q"], stdin=save.stdout,
                              capture_output=True, text=True, check=False)
        save.stdout.close()
        saved_err = save.communicate()[1].decode(errors="replace")
        if save.returncode != 0 or load.returncode != 0:
            raise EngineError(f"copying {', '.join(tags)} into the suite's engine failed: "
                              f"{(saved_err + load.stderr).strip()[-500:]}")


def _clean_stale() -> None:
    """Remove the engines of sessions whose pytest is gone (killed before its clean-up)."""
    if not RUN_ROOT.is_dir():
        return
    for run_dir in RUN_ROOT.iterdir():
        owner = run_dir / "owner"
        if not (run_dir.name.isdigit() and owner.is_file()) or _alive(owner.read_text()):
            continue
        engine = SuiteEngine(int(run_dir.name))
        pidfile = run_dir / "docker.pid"
        if pidfile.is_file() and pidfile.read_text().strip().isdigit():
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline")
            # Only that dead session's dockerd: the one whose command names this folder.
            if cmdline.is_file() and str(run_dir) in cmdline.read_text(errors="replace"):
                os.kill(pid, signal.SIGTERM)
                for _ in range(STOP_S * 5):
                    if not cmdline.exists():
                        break
                    time.sleep(0.2)
        engine.remove()


def _free(slot: int, taken: list[ipaddress.IPv4Network]) -> bool:
    net = ipaddress.ip_network(f"10.{slot}.0.0/16")
    return (not (RUN_ROOT / str(slot)).exists() and not _link_exists(f"kfbox-test{slot}")
            and not any(net.overlaps(route) for route in taken))


@contextlib.contextmanager
def suite_engine() -> Iterator[SuiteEngine]:
    """A started engine of the session's own, removed with all it had when the block ends."""
    if os.geteuid() != 0:
        raise EngineError("starting the suite's own Docker engine needs root")
    if shutil.which("dockerd") is None:
        raise EngineError("no dockerd to start the suite's own engine with (run `kfbox provision`)")
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    with (RUN_ROOT / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _clean_stale()
        taken = _routes()
        slot = next((s for s in SLOTS if _free(s, taken)), None)
        if slot is None:
            raise EngineError(f"no free 10.X.0.0/16 for the suite's engine (X in {SLOTS})")
        engine = SuiteEngine(slot)
        engine.run_dir.mkdir(parents=True)
        (engine.run_dir / "owner").write_text(f"{os.getpid()} {_process_start(os.getpid())}")
        try:
            engine._make_network()
        except BaseException:
            engine.remove()
            raise
    try:
        engine.start()
        yield engine
    finally:
        engine.remove()
        with contextlib.suppress(OSError):
            DATA_ROOT.rmdir()  # when no other session's engine is in it
