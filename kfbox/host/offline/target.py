"""The machine a bundle is for: OS release and architecture, read from this host or a manifest."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from pydantic import BaseModel, ConfigDict

OS_RELEASE = Path("/etc/os-release")
MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
"""Debian architecture → the machine name wheels are tagged with (`uname -m`)."""


class Target(BaseModel):
    """A Debian release on one architecture, as /etc/os-release and dpkg name them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    os_id: str
    version_id: str
    codename: str
    pretty_name: str
    arch: str

    def describe(self) -> str:
        return f"{self.pretty_name} {self.arch}"

    @property
    def machine(self) -> str:
        return MACHINES.get(self.arch, self.arch)


def os_release(path: Path = OS_RELEASE) -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields


def dpkg_arch() -> str:
    """dpkg's name for this machine's architecture (amd64, arm64); from uname without dpkg."""
    try:
        done = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=False)
    except OSError:
        done = None
    if done is not None and done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip()
    machine = platform.machine()
    return {v: k for k, v in MACHINES.items()}.get(machine, machine)


def this_host() -> Target:
    fields = os_release()
    return Target(
        os_id=fields.get("ID", "unknown"),
        version_id=fields.get("VERSION_ID", ""),
        codename=fields.get("VERSION_CODENAME", ""),
        pretty_name=fields.get("PRETTY_NAME", "an unknown OS"),
        arch=dpkg_arch(),
    )


def mismatch(bundle: Target, host: Target) -> str:
    """Why a bundle for `bundle` cannot install on `host`, or "" when it can: the release and
    the architecture must both match (packages and wheels are built for exactly those)."""
    if (bundle.os_id, bundle.version_id) != (host.os_id, host.version_id):
        return (f"the bundle is for {bundle.pretty_name} but this machine runs "
                f"{host.pretty_name}")
    if bundle.arch != host.arch:
        return f"the bundle is for {bundle.arch} but this machine is {host.arch}"
    return ""
