"""A sandbox's state on disk, written so that a crash or a kill at any moment never leaves half a
file: whole-file replaces, owner-only secrets, and the notebook token made once per sandbox.
`StateFolder` is the one type that reads and writes a sandbox's state folder."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kfbox.host import paths


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


class StateFolder:
    """A sandbox's state folder (~/.kfbox/sandboxes/NAME, under KFBOX_HOME): its recorded spec,
    its notebook token and each engine's own records. Every file in it is read and written
    here, whole (write_atomic), so no reader ever sees half a file and no caller builds paths
    into it. Which files an engine keeps is the engine's business: it names them."""

    SPEC = "spec.json"
    TOKEN = "jupyter-token"

    def __init__(self, sandbox: str) -> None:
        self.sandbox = sandbox
        self.path = paths.state_dir(sandbox)

    def exists(self) -> bool:
        return self.path.exists()

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def file(self, name: str) -> Path:
        """The path of one file, for a tool that reads it itself (kubectl's kubeconfig)."""
        return self.path / name

    def read_text(self, name: str) -> str | None:
        """The file's text; None when it is missing or unreadable."""
        try:
            return (self.path / name).read_text()
        except OSError:
            return None

    def read_json(self, name: str) -> Any:
        """The file's JSON; None when it is missing, unreadable or not JSON (a record that
        cannot be read is treated as absent: the next `up` writes it whole again)."""
        text = self.read_text(name)
        try:
            return json.loads(text) if text is not None else None
        except ValueError:
            return None

    def write_text(self, name: str, text: str, *, private: bool = False) -> None:
        write_atomic(self.path / name, text, private=private)

    def write_json(self, name: str, data: Any, *, private: bool = False) -> None:
        self.write_text(name, json.dumps(data, indent=2), private=private)

    def token(self) -> str:
        """The sandbox's Jupyter token."""
        return self.secret(self.TOKEN)

    def secret(self, name: str) -> str:
        """One of the sandbox's secrets (the Jupyter token, the tracking server's password):
        made once, kept 0600, never printed or logged. An empty or unreadable file gets a new
        one: an empty secret would open the server."""
        value = (self.read_text(name) or "").strip()
        if not value:
            value = secrets.token_hex(24)
            self.write_text(name, value, private=True)
        return value

    def remove(self) -> None:
        """Forget the sandbox: its recorded spec, token and engine records."""
        shutil.rmtree(self.path, ignore_errors=True)
