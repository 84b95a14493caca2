"""The `kfbox` command's start as a person meets it: `kfbox --help` and `kfbox status` of the
bench's running sandbox, each a fresh process, timed from its start to its exit."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from kfbox.host.errors import KfboxError

RUNS = 5
"""Runs of each command counted (after one that warms the page cache): the median is kept."""


def kfbox_command() -> list[str]:
    """The `kfbox` a person runs: the console script beside this interpreter (a venv's, or an
    offline install's), else the same entry point through the interpreter."""
    script = Path(sys.executable).with_name("kfbox")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from kfbox.cli import run; sys.exit(run())"]


def start_s(args: list[str], runs: int = RUNS) -> float:
    """The median wall time of `kfbox ARGS` over `runs` fresh processes."""
    argv = [*kfbox_command(), *args]
    times = []
    for _ in range(runs + 1):
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        times.append(time.monotonic() - started)
        if done.returncode:
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise KfboxError(f"`kfbox {' '.join(args)}` exited {done.returncode}: "
                             f"{said[-1] if said else 'nothing said'}")
    return statistics.median(times[1:])
