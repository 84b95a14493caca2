"""The kfbox command as a user runs it (a child process), and a private KFBOX_HOME for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def kfbox_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """`kfbox ARGS` in a child process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from kfbox.cli import run; run()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def private_home(home: Path) -> Path:
    """Make `home` a private KFBOX_HOME for state; the image and wheel caches stay shared (they
    are big and keyed by their inputs, so sharing them cannot change a result)."""
    shared_cache = Path(os.environ.get("KFBOX_HOME", Path.home() / ".kfbox")) / "cache"
    home.mkdir(parents=True, exist_ok=True)
    shared_cache.mkdir(parents=True, exist_ok=True)
    (home / "cache").symlink_to(shared_cache)
    return home
