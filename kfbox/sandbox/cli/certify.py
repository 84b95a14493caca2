"""`kfbox certify` and `kfbox results`: run a conformance profile, write and re-read the bundle."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Placeholder until the conformance commands land."""
