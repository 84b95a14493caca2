"""`kfbox bundle`: the offline bundle for the Kubernetes engine."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Placeholder until the Kubernetes engine lands."""
