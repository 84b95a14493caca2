"""kfbox and its Python dependencies as wheels for the target's Debian python3 (what `kfbox run`
needs, no dev extras), each pinned to the version installed beside this kfbox."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import kfbox
from kfbox.host.errors import PreflightError
from kfbox.host.images.versions import installed_versions
from kfbox.host.images.wheelhouse import SOURCE_ONLY, build_source_only, pip_error
from kfbox.host.offline.target import Target

OLDEST_MANYLINUX = 5
"""manylinux_2_5 (manylinux1) is the oldest glibc tag pip knows."""


def source_root() -> Path:
    """The checkout kfbox runs from (its pyproject.toml beside the package)."""
    root = Path(kfbox.__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        raise PreflightError(
            f"kfbox's source is not beside its package ({root} has no pyproject.toml), so its "
            "wheel cannot be built", fix="run `kfbox bundle` from a checkout (bin/kfbox bundle)")
    return root


def platform_args(target: Target, python: str, glibc: str) -> list[str]:
    """pip's options for wheels that run on the target's python3 and glibc: CPython `python`
    (3.11) and every manylinux tag up to glibc `glibc` (2.36) on the target's machine."""
    major, minor = (int(part) for part in glibc.split(".")[:2])
    machine = target.machine
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, OLDEST_MANYLINUX - 1, -1)]
    tags += [f"manylinux{name}_{machine}" for name in ("2014", "2010", "1")]
    tags.append(f"linux_{machine}")
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python,
            "--abi", f"cp{python.replace('.', '')}"]
    for tag in tags:
        args += ["--platform", tag]
    return args


def pinned_here() -> str:
    """A pip constraints file: every distribution installed beside kfbox, at its version, so
    the bundle carries what this kfbox was tested with rather than the newest releases."""
    pins = {
        dist.metadata["Name"].lower(): dist.version
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"] and dist.metadata["Name"].lower() != "kfbox"
    }
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def _pip(*args: str, what: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise pip_error(what, done.stderr, "check the package index in your pip config")


def download_wheels(dest: Path, target: Target, python: str, glibc: str,
                    update: Callable[[str], None]) -> dict[str, str]:
    """kfbox's wheel (built from its source) and its dependencies' wheels into `dest`;
    returns distribution → version."""
    root = source_root()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kfbox-wheel-") as tmp:
        # Built from a copy: setuptools leaves build/ and *.egg-info in the tree it builds.
        source = Path(tmp) / "src"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, source / name)
        shutil.copytree(root / "kfbox", source / "kfbox",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        update(f"building kfbox {kfbox.__version__}")
        _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(dest), str(source),
             what="build kfbox's wheel")
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text(pinned_here())
        [wheel] = dest.glob("kfbox-*.whl")
        # A dependency PyPI has as source only gets its wheel built here, at the version
        # installed here; the download for the target then finds it beside the others.
        build_source_only([f"{name}=={version}" for name, version in
                           installed_versions(sorted(SOURCE_ONLY)).items()], dest)
        update(f"downloading kfbox's dependencies for CPython {python} on {target.machine}")
        _pip("download", "--quiet", *platform_args(target, python, glibc), "--dest", str(dest),
             "--find-links", str(dest), "--constraint", str(constraints), str(wheel),
             what="download kfbox's dependencies")
    return {name: version for name, version in map(wheel_name, sorted(dest.glob("*.whl")))}


def wheel_name(path: Path) -> tuple[str, str]:
    """(distribution, version) from a wheel's file name."""
    name, version = path.name.split("-")[:2]
    return name.replace("_", "-").lower(), version
