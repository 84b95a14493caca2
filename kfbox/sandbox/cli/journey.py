"""`kfbox test` and `kfbox run`: the Critical User Journey against the sandbox."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Placeholder until the journey lands."""
