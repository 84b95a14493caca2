"""The tutorials an engine offers a person: the notebooks in one of its folders, and what running
each proves (that folder's checks.yaml: a requirement id and conditions on what it prints)."""

from __future__ import annotations

from pathlib import Path

import yaml

from kfbox.engines.base import Tutorial

CHECKS = "checks.yaml"
RUNTIME_IMAGE_ENV = "KFBOX_RUNTIME_IMAGE"
"""Where every engine's notebook finds the ML runtime's image, which the tutorials' jobs and
model servers run (the kernel runs the same software)."""


def notebooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ipynb"))


def tutorial_checks(folder: Path) -> list[Tutorial]:
    """Each tutorial of `folder` with what running it proves."""
    checks = yaml.safe_load((folder / CHECKS).read_text())
    return [Tutorial(str(folder / name), entry["requirement"], entry["prints"])
            for name, entry in checks.items()]
