"""A sandbox's state on disk, written so that a crash or a kill at any moment never leaves half a
file: whole-file replaces, owner-only secrets, and the notebook token made once per sandbox."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from kfbox.host import paths

TOKEN_FILE = "jupyter-token"


def write_atomic(path: Path, text: str, *, private: bool = False) -> None:
    """Replace `path` with `text` in one step (written aside, then renamed): a reader sees the
    old file or the new one, never a part. `private`: readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as sink:  # mkstemp makes it 0600 already
            sink.write(text)
            sink.flush()
            os.fsync(sink.fileno())
        if not private:
            os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def token(sandbox: str) -> str:
    """The sandbox's Jupyter token: made once, kept 0600 in its state folder, never printed or
    logged. An empty or unreadable file gets a new one: an empty token would open the server."""
    file = paths.state_dir(sandbox) / TOKEN_FILE
    try:
        value = file.read_text().strip()
    except OSError:
        value = ""
    if not value:
        value = secrets.token_hex(24)
        write_atomic(file, value, private=True)
    return value
