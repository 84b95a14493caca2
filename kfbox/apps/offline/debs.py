"""The Debian packages a fresh machine lacks: apt's own resolver, run in a private apt state whose
"installed" packages are exactly what `debootstrap --variant=minbase` installs, downloads the
packages the bootstrap (Python) and the engine (docker.io, debootstrap, ...) need on top."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kfbox.host import paths
from kfbox.host.errors import KfboxError, PreflightError
from kfbox.host.images.base import mirror
from kfbox.host.offline.manifest import Deb, Fresh, Stage
from kfbox.host.offline.target import Target
from kfbox.host.provision.runner import PLAYBOOKS

BOOTSTRAP_PACKAGES = ("python3", "python3-venv")
"""What bootstrap.sh needs to make kfbox's virtual environment from the bundled wheels."""
ENGINE_DEFAULTS = PLAYBOOKS / "roles" / "docker_engine" / "defaults" / "main.yml"


def engine_packages() -> list[str]:
    """The packages `kfbox provision` installs online: the bundle carries the same ones."""
    return list(yaml.safe_load(ENGINE_DEFAULTS.read_text())["docker_engine_packages"])


def stanzas(text: str) -> dict[str, str]:
    """Package name → its control stanza, from `apt-cache dumpavail` or a status file."""
    found: dict[str, str] = {}
    for stanza in text.split("\n\n"):
        match = re.search(r"^Package: (\S+)$", stanza, re.M)
        if match:
            found.setdefault(match.group(1), stanza.strip())
    return found


def field_of(stanza: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*)$", stanza, re.M)
    return match.group(1).strip() if match else ""


def as_installed(stanza: str) -> str:
    return stanza.replace("\n", "\nStatus: install ok installed\n", 1)


@dataclass
class Resolved:
    debs: list[Deb] = field(default_factory=list)
    fresh: Fresh | None = None
    versions: dict[str, str] = field(default_factory=dict)
    """Package → version of every package a fresh machine then has (baseline and bundled)."""


class PrivateApt:
    """apt with its own lists, caches and dpkg status: the host's sources, nothing of the
    host's installed state, and nothing written outside `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.status = root / "status"
        for folder in ("lists/partial", "cache/archives/partial"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        self.status.touch()

    def __call__(self, tool: str, *args: str) -> str:
        command = [
            tool,
            "-o", f"Dir::State::Lists={self.root / 'lists'}",
            "-o", f"Dir::Cache={self.root / 'cache'}",
            "-o", f"Dir::State::status={self.status}",
            "-o", "Debug::NoLocking=1",
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              env={**os.environ, "LC_ALL": "C"})
        if done.returncode != 0:
            errors = [ln for ln in done.stderr.splitlines() if ln.startswith("E:")]
            cause = errors[0] if errors else (done.stderr.strip().splitlines() or ["?"])[-1]
            raise KfboxError(f"{tool} {args[-1] if args else ''} failed: {cause}",
                             fix="check the Debian archive in /etc/apt/sources.list*")
        return done.stdout


def minbase(target: Target) -> list[str]:
    """The packages of a fresh machine: debootstrap's own minbase list for the release."""
    tool = shutil.which("debootstrap")
    if not tool:
        raise PreflightError("debootstrap is missing: it defines what a fresh machine has",
                             fix="apt-get install -y debootstrap (or run `kfbox provision`)")
    with tempfile.TemporaryDirectory(prefix="kfbox-minbase-") as tmp:
        done = subprocess.run(
            [tool, "--print-debs", "--variant=minbase", target.codename, f"{tmp}/root",
             mirror()],
            capture_output=True, text=True, check=False,
        )
    if done.returncode != 0 or not done.stdout.split():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise KfboxError(f"debootstrap --print-debs failed: {tail}",
                         fix=f"check that {mirror()} is reachable, or set KFBOX_DEBIAN_MIRROR")
    return sorted(set(done.stdout.split()))


def resolve_debs(target: Target, dest: Path, update: Callable[[str], None]) -> Resolved:
    """Download into `dest` what a fresh `target` machine lacks for the bootstrap, then for the
    engine (each resolved against fresh + the stages before it), recommends left out as
    `kfbox provision` leaves them out."""
    apt = PrivateApt(paths.cache_dir("apt"))
    update("apt-get update (private lists)")
    apt("apt-get", "update")
    update(f"debootstrap --print-debs --variant=minbase {target.codename}")
    baseline = minbase(target)
    available = stanzas(apt("apt-cache", "dumpavail"))
    installed = {name: available[name] for name in baseline if name in available}
    resolved = Resolved(fresh=Fresh(
        definition=f"debootstrap --variant=minbase {target.codename} from {mirror()}",
        packages=len(baseline)))
    dest.mkdir(parents=True, exist_ok=True)
    stages: list[tuple[Stage, list[str]]] = [("bootstrap", list(BOOTSTRAP_PACKAGES)),
                                             ("engine", engine_packages())]
    for stage, wanted in stages:
        update(f"resolving {', '.join(wanted)} against a fresh {target.codename}")
        apt.status.write_text("".join(f"{as_installed(s)}\n\n" for s in installed.values()))
        with tempfile.TemporaryDirectory(dir=dest, prefix=".apt-") as tmp:
            (Path(tmp) / "partial").mkdir()
            apt("apt-get", "install", "--download-only", "--yes", "--no-install-recommends",
                "-o", f"Dir::Cache::archives={tmp}/", *wanted)
            for downloaded in sorted(Path(tmp).glob("*.deb")):
                deb = _place(downloaded, dest, stage)
                resolved.debs.append(deb)
                installed[deb.package] = _control(dest / Path(deb.file).name)
    resolved.versions = {name: field_of(s, "Version") for name, s in installed.items()}
    return resolved


def _control(deb: Path) -> str:
    done = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


def _place(downloaded: Path, dest: Path, stage: Stage) -> Deb:
    """Move a downloaded .deb into `dest` under a name without apt's %3a (an epoch's colon),
    which apt itself then refuses to install from a local path."""
    control = _control(downloaded)
    package, version = field_of(control, "Package"), field_of(control, "Version")
    arch = field_of(control, "Architecture")
    name = f"{package}_{version.split(':')[-1]}_{arch}.deb"
    downloaded.rename(dest / name)
    installed_kib = field_of(control, "Installed-Size") or "0"
    return Deb(package=package, version=version, arch=arch, file=f"debs/{name}", stage=stage,
               installed_bytes=int(installed_kib) * 1024)
