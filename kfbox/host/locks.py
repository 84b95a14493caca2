"""One lifecycle command per sandbox at a time: `up` and `down` take the sandbox's lock; a
second one waits for the first, saying so, and gives up with one line after a while.

The lock is an flock on a file that is never deleted (outside the state folder `down`
removes), so a killed holder releases it with its last breath: no stale lock is possible.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

from kfbox.host import paths
from kfbox.host.errors import KfboxError
from kfbox.host.progress import Reporter

WAIT_S = 1800.0
"""How long a command waits for another one on the same sandbox (a cold `up` takes minutes)."""
POLL_S = 0.5


class SandboxBusy(KfboxError):
    """Another kfbox command held the sandbox for longer than we would wait."""

    exit_code = 4


def _holder(handle) -> str:
    handle.seek(0)
    return handle.read().strip() or "another kfbox command"


@contextlib.contextmanager
def sandbox_lock(
    sandbox: str, command: str, reporter: Reporter, *, wait_s: float = WAIT_S
) -> Iterator[None]:
    """Hold sandbox `sandbox` for `command` (`up`, `down`), waiting for whoever holds it."""
    folder = paths.home() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{sandbox}.lock", "a+") as handle:
        deadline = time.monotonic() + wait_s
        said = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(handle)
                if time.monotonic() >= deadline:
                    raise SandboxBusy(
                        f"sandbox {sandbox!r} is busy: {holder} has held it for over "
                        f"{wait_s:.0f}s", fix="wait for it to finish, or stop that process"
                    ) from None
                if not said:
                    reporter.warn(f"sandbox {sandbox!r} is busy ({holder}); waiting for it")
                    said = True
                time.sleep(POLL_S)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"`kfbox {command}` (pid {os.getpid()})")
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
