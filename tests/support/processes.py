"""Servers the tests start as child processes: wait until one answers, stop it with its children."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import requests


def wait_until_answers(
    proc: subprocess.Popen,
    url: str,
    log: Path,
    *,
    timeout_s: float = 60,
    headers: dict[str, str] | None = None,
    need_ok: bool = False,
) -> None:
    """Poll `url` until it answers (with 2xx when need_ok); fail with the log's tail if the
    process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, f"{proc.args[0]} exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"{url} did not answer: {log.read_text()[-2000:]}"
        try:
            answer = requests.get(url, timeout=1, headers=headers or {})
            if answer.ok or not need_ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)


def stop(proc: subprocess.Popen, *, timeout_s: float = 20) -> None:
    """Terminate, then kill; a process started in its own session takes its group with it
    (a kernel or renderer it failed to stop)."""
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout_s)
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
