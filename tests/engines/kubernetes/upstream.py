"""The upstream facts (upstream/facts.yaml): names, images and settings read from each pinned
release, with their sources. Tests and the double's rules read upstream's data from here."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

FACTS = Path(__file__).parent / "upstream" / "facts.yaml"


@cache
def facts() -> dict[str, Any]:
    return yaml.safe_load(FACTS.read_text())


def component(name: str) -> dict[str, Any]:
    """One pinned component's facts (cert-manager, trainer, katib, kserve, ...)."""
    return facts()["components"][name]
