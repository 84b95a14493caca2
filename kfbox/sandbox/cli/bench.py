"""`kfbox bench`: cold/warm `up`, idle memory and train-step overhead, beside their targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kfbox.sandbox.errors import UsageError


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        cold: Annotated[
            bool,
            typer.Option(
                help="Start from an empty image store (removes kfbox images "
                "and download caches; every sandbox must be down)"
            ),
        ] = False,
        train_runs: Annotated[int, typer.Option(help="Train-step repetitions (0 skips it)")] = 3,
        out: Annotated[
            Path | None, typer.Option(help="Also write the numbers as JSON here")
        ] = None,
    ) -> None:
        """Measure bring-up, idle memory and harness overhead on a throwaway sandbox."""
        from kfbox.sandbox.bench import TARGETS, run_bench
        from kfbox.sandbox.cli import out as stdout
        from kfbox.sandbox.progress import Reporter

        if train_runs < 0:
            raise UsageError(f"--train-runs {train_runs} is negative; give 0 or more")
        result = run_bench(cold=cold, train_runs=train_runs, reporter=Reporter())
        table = Table(title="kfbox bench", title_justify="left", show_edge=False)
        for column in ("measure", "value", "target"):
            table.add_column(column)
        within = result.verdicts()
        for key, value in result.numbers.items():
            target = TARGETS.get(key)
            mark = "" if target is None else (" [green]✓[/]" if within[key] else " [red]✗[/]")
            table.add_row(key, f"{value}", f"≤ {target}{mark}" if target is not None else "")
        stdout.print(table)
        for key, note in result.notes.items():
            stdout.print(f"[dim]{key}: {note}[/]")
        if out is not None:
            out.write_text(json.dumps(result.to_dict(), indent=2))
