"""A wheelhouse made on the host for the images' Python (cp311, manylinux x86_64), so a build
needs no package index inside the container. pip's own host configuration (index, find-links,
certificates) decides where wheels come from: that is how torch stays the CPU wheel here."""

from __future__ import annotations

import hashlib
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
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            *TARGET,
            "-d",
            str(partial),
            *requirements,
            INSTALLER,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            errors = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")]
            cause = errors[0] if errors else (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise KfboxError(
                f"pip could not download the wheels for {label}: {cause}",
                fix="check the package index in your pip config; offline, copy a wheelhouse "
                f"into {paths.cache_dir('wheels')}",
            )
        (partial / DONE_MARKER).write_text("\n".join(requirements) + "\n")
        if not (target / DONE_MARKER).exists():  # what a killed fetch left
            shutil.rmtree(target, ignore_errors=True)
        try:
            partial.rename(target)
        except OSError:  # another fetch finished first: its copy is as good
            shutil.rmtree(partial, ignore_errors=True)
    return target
