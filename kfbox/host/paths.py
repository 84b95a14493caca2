"""Where kfbox keeps state, caches and run outputs on the host (override with KFBOX_HOME)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Root of everything kfbox writes outside a sandbox's containers."""
    return Path(os.environ.get("KFBOX_HOME", Path.home() / ".kfbox")).expanduser()


def state_dir(sandbox: str) -> Path:
    """Per-sandbox state: the recorded spec, component records, the training runtime file."""
    return home() / "sandboxes" / sandbox


def cache_dir(kind: str) -> Path:
    """Shared caches: the debootstrap rootfs tarball, the wheelhouse, downloaded manifests."""
    path = home() / "cache" / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
