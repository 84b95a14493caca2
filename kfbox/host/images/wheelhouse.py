"""A wheelhouse made on the host for the images' Python (cp311, manylinux x86_64), so a build
needs no package index inside the container. pip's own host configuration (index, find-links,
certificates) decides where wheels come from: that is how torch stays the CPU wheel here."""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from kfbox.host import paths
from kfbox.host.errors import KfboxError
from kfbox.host.progress import Reporter

# The base image is Debian bookworm: CPython 3.11, glibc 2.36, x86_64.
TARGET = [
    "--only-binary=:all:",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--platform",
    "manylinux_2_28_x86_64",
    "--platform",
    "manylinux_2_17_x86_64",
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "linux_x86_64",
]
DONE_MARKER = ".complete"
SOURCE_ONLY = {"kfp-server-api"}
"""Pure-Python packages PyPI publishes as source only (kfp-server-api 2.17.3 is a tar.gz alone):
pip builds their wheel on the host first, since a download for another target takes wheels only."""


INSTALLER = "uv==0.13.8"
"""The installer image builds take from the wheelhouse (components/install-wheels): in every
wheelhouse, never in an image."""


def wheelhouse_dir(requirements: list[str]) -> Path:
    key = hashlib.sha256("\n".join(sorted([*requirements, INSTALLER])).encode()).hexdigest()[:12]
    return paths.cache_dir("wheels") / key


def ensure_wheelhouse(requirements: list[str], reporter: Reporter, label: str) -> Path:
    """Download the wheels for `requirements` once; later calls (and offline runs) reuse them."""
    target = wheelhouse_dir(requirements)
    if (target / DONE_MARKER).exists():
        return target
    with reporter.step(f"Downloading wheels for {label}", action=f"wheels:{label}") as update:
        update(", ".join(requirements))
        # Its own partial folder: two sandboxes may fetch the same wheelhouse at once.
        partial = target.with_name(f"{target.name}.{secrets.token_hex(4)}.partial")
        built = build_source_only(requirements, partial)
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            *TARGET,
            *(["--find-links", str(partial)] if built else []),
            "-d",
            str(partial),
            *requirements,
            INSTALLER,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise pip_error(f"download the wheels for {label}", done.stderr, _fix())
        (partial / DONE_MARKER).write_text("\n".join(requirements) + "\n")
        if not (target / DONE_MARKER).exists():  # what a killed fetch left
            shutil.rmtree(target, ignore_errors=True)
        try:
            partial.rename(target)
        except OSError:  # another fetch finished first: its copy is as good
            shutil.rmtree(partial, ignore_errors=True)
    return target


def build_source_only(requirements: list[str], dest: Path) -> bool:
    """Build into `dest` the wheels of the requirements in SOURCE_ONLY (pure Python: one wheel
    fits every target); whether there were any."""
    wanted = [r for r in requirements if project_name(r) in SOURCE_ONLY]
    if not wanted:
        return False
    dest.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "--no-deps", "-w", str(dest), *wanted],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        raise pip_error(f"build the wheels of {', '.join(wanted)}", done.stderr, _fix())
    return True


def _fix() -> str:
    return ("check the package index in your pip config; offline, copy a wheelhouse into "
            f"{paths.cache_dir('wheels')}")


def project_name(requirement: str) -> str:
    """A requirement's project name, normalised (PEP 503)."""
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def pip_error(what: str, stderr: str, fix: str) -> KfboxError:
    """pip's failure as one line: its last ERROR line is the cause (the first is often a note
    on versions it skipped)."""
    errors = [ln for ln in stderr.splitlines() if ln.startswith("ERROR")]
    cause = errors[-1] if errors else (stderr.strip().splitlines() or ["no output"])[-1]
    return KfboxError(f"pip could not {what}: {cause}", fix=fix)
