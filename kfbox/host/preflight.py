"""Host checks shared by every engine: Docker, memory, disk, CPU, ports, inotify, GPU, CA bundle."""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kfbox.host import docker_engine, listen, paths
from kfbox.host.config import LOOPBACK, SandboxSpec, published_address
from kfbox.host.gpu import detect_gpus, engine_has_nvidia_runtime
from kfbox.host.images.ca import find_ca_bundle

MIN_MEMORY_GIB = 4
MIN_DISK_GIB = 10
INOTIFY_MINIMUMS = {"fs.inotify.max_user_watches": 524288, "fs.inotify.max_user_instances": 512}


CheckStatus = Literal["pass", "warn", "fail"]


@dataclass
class Check:
    """One preflight finding; a failing check always says how to fix it."""

    name: str
    status: CheckStatus
    detail: str
    fix: str = ""


def check_docker(reachable: bool, detail: str) -> Check:
    if reachable:
        return Check("docker engine", "pass", f"version {detail}")
    return Check(
        "docker engine",
        "fail",
        detail,
        fix="run `kfbox provision` (or `kfbox up --provision`) to install and start it",
    )


def meminfo_mib() -> dict[str, float]:
    """/proc/meminfo in MiB: MemTotal, MemAvailable, ..."""
    found = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            found[key] = int(value.split()[0]) / 1024
    return found


def check_memory() -> Check:
    gib = meminfo_mib().get("MemTotal", 0) / 1024
    if gib < MIN_MEMORY_GIB:
        return Check("memory", "fail", f"{gib:.1f} GiB", fix=f"kfbox needs {MIN_MEMORY_GIB} GiB")
    status = "warn" if gib < 8 else "pass"
    return Check("memory", status, f"{gib:.1f} GiB", fix="8 GiB or more is comfortable")


def check_disk() -> Check:
    where = paths.home()
    probe = where if where.exists() else where.parent
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 2**30
    if free < MIN_DISK_GIB:
        return Check(
            "disk",
            "fail",
            f"{free:.1f} GiB free at {probe}",
            fix=f"free {MIN_DISK_GIB} GiB or set KFBOX_HOME to a larger disk",
        )
    return Check("disk", "pass", f"{free:.1f} GiB free at {probe}")


def check_cpu() -> Check:
    cpus = os.cpu_count() or 1
    return Check(
        "cpu",
        "pass" if cpus >= 2 else "warn",
        f"{cpus} cores",
        fix="" if cpus >= 2 else "journeys will be slow on one core",
    )


def port_free(port: int, address: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def check_listen(address: str) -> Check:
    """The listen address must be this host's (or 0.0.0.0); beyond loopback it is a warning."""
    if not listen.host_has(address):
        return Check(
            "listen address",
            "fail",
            f"{address} is not an address of this host",
            fix="give one it has (`ip -4 addr` lists them), 0.0.0.0 for all, or 127.0.0.1",
        )
    if listen.is_loopback(address):
        return Check("listen address", "pass", listen.describe(address))
    return Check(
        "listen address",
        "warn",
        listen.describe(address),
        fix="leave --listen out to keep the sandbox on 127.0.0.1",
    )


def check_ports(
    spec: SandboxSpec, owned: set[int] | None = None, listen_address: str = LOOPBACK
) -> list[Check]:
    """A port is fine when free on the address it will be published on (the engine listens on
    `listen_address`), or when this sandbox's own component already holds it."""
    checks = []
    for component, port in spec.ports.model_dump().items():
        address = published_address(component, listen_address)
        where = f"{address}:{port}"
        if port in (owned or set()) or port_free(port, address):
            checks.append(Check(f"port {component}", "pass", where))
        else:
            checks.append(
                Check(
                    f"port {component}",
                    "fail",
                    f"{where} is already in use",
                    fix=f"free it or pick another: `--port {component}=N` / ports.{component}",
                )
            )
    return checks


def check_inotify() -> Check:
    low = []
    for key, minimum in INOTIFY_MINIMUMS.items():
        path = Path("/proc/sys") / key.replace(".", "/")
        value = int(path.read_text()) if path.exists() else 0
        if value < minimum:
            low.append(f"{key}={value} (< {minimum})")
    if low:
        return Check(
            "inotify",
            "warn",
            ", ".join(low),
            fix="`kfbox provision` raises them (needed by kind nodes and file watchers)",
        )
    return Check("inotify", "pass", "limits high enough")


def check_gpu(spec: SandboxSpec, runtimes: dict[str, object] | None = None) -> Check:
    if spec.gpu == "off":
        return Check("gpu", "pass", "not used (gpu: off)")
    facts = detect_gpus()
    if not facts.present:
        detail = facts.smi_error or "no NVIDIA GPU found (nvidia-smi absent or lists none)"
        if spec.gpu == "on":
            return Check(
                "gpu", "fail", detail, fix="set gpu: auto or off, or install the NVIDIA driver"
            )
        return Check("gpu", "pass", f"none; workloads run on CPU ({detail})")
    detail = f"{facts.count} x {facts.names[0]}, driver {facts.driver}"
    if runtimes is not None and not engine_has_nvidia_runtime(runtimes):
        status = "fail" if spec.gpu == "on" else "warn"
        return Check(
            "gpu",
            status,
            f"{detail}; the Docker engine has no nvidia runtime",
            fix="run `kfbox provision` to install the NVIDIA container toolkit",
        )
    return Check("gpu", "pass", detail)


def check_ca_bundle(spec: SandboxSpec) -> Check:
    bundle = spec.ca_bundle or find_ca_bundle()
    if bundle is None:
        return Check(
            "ca bundle",
            "warn",
            "no CA bundle found on the host",
            fix="pass --ca-bundle PATH if you are behind a TLS-inspecting proxy",
        )
    origin = "given" if spec.ca_bundle else "detected"
    return Check("ca bundle", "pass", f"{bundle} ({origin}; copied into every image)")


def host_checks(
    spec: SandboxSpec, owned_ports: set[int] | None = None, listen_address: str = LOOPBACK
) -> list[Check]:
    """The checks every engine runs; engine-specific ones are added by the engine. An engine
    that publishes beyond loopback passes the address it listens on."""
    ok, detail = docker_engine.reachable()
    runtimes = docker_engine.connect().info().get("Runtimes", {}) if ok else None
    return [
        check_docker(ok, detail),
        check_memory(),
        check_disk(),
        check_cpu(),
        check_listen(listen_address),
        *check_ports(spec, owned_ports, listen_address),
        check_inotify(),
        check_gpu(spec, runtimes),
        check_ca_bundle(spec),
    ]
