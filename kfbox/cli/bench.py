"""`kfbox bench`: bring-up, images, the journey, the train step, serving under load, memory and
a soak, measured in one run beside their targets; JSON out, and a comparison with an earlier
run's JSON (the ratio of each figure)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from kfbox.cli.console import out as stdout
from kfbox.host.errors import UsageError
from kfbox.host.progress import Reporter


def _check(value: int, flag: str, least: int) -> None:
    if value < least:
        raise UsageError(f"{flag} {value} is {'negative' if value < 0 else 'too small'}; "
                         f"give {least} or more")


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        cold: Annotated[
            bool,
            typer.Option(help="Start from an empty image store (removes kfbox images and "
                              "download caches; every sandbox must be down)"),
        ] = False,
        journey: Annotated[
            bool, typer.Option(help="Run the core journey and time its steps")
        ] = True,
        train_runs: Annotated[int, typer.Option(help="Train-step repetitions (0 skips it)")] = 3,
        tune_runs: Annotated[
            int, typer.Option(help="Tune-step repetitions, by hand beside (0 skips it)")
        ] = 1,
        serve_requests: Annotated[
            int, typer.Option(help="Requests sent to a served model (0 skips the load)")
        ] = 2000,
        concurrency: Annotated[int, typer.Option(help="Requests in flight at once")] = 8,
        soak: Annotated[
            int, typer.Option(help="Up/down cycles of a new sandbox, each checked for leftovers")
        ] = 0,
        notebook_path: Annotated[
            bool, typer.Option(help="Time the tutorials in the kernel of a sandbox behind the "
                                    "person's boundary (a rootless engine of its own), beside "
                                    "the journey's steps there")
        ] = True,
        out: Annotated[Path | None, typer.Option(help="Also write the figures as JSON")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
        compare: Annotated[
            Path | None, typer.Option(help="An earlier run's JSON: the ratio of each figure")
        ] = None,
    ) -> None:
        """Measure on throwaway sandboxes; targets are reported beside the figures, never
        asserted."""
        # Imported here for start-up time: the bench loads the engines and the harness.
        from kfbox.apps.bench.figures import ratio, read_figures
        from kfbox.apps.bench.run import Options, run_bench
        from kfbox.cli.render import print_json

        for value, flag, least in ((train_runs, "--train-runs", 0), (tune_runs, "--tune-runs", 0),
                                   (serve_requests, "--serve-requests", 0),
                                   (concurrency, "--concurrency", 1), (soak, "--soak", 0)):
            _check(value, flag, least)
        before = read_figures(compare) if compare is not None else {}
        result = run_bench(Options(cold, journey, train_runs, tune_runs, serve_requests,
                                   concurrency, soak, notebook_path),
                           Reporter(quiet=as_json))
        if out is not None:
            result.write(out)
        if as_json:
            print_json(stdout, result.to_dict())
            return
        host = result.host
        table = Table(title=f"kfbox bench on {host.os}, {host.cpu_count} CPU ({host.cpu_model}), "
                            f"{host.memory_gib} GiB", title_justify="left", show_edge=False)
        for column in ("figure", "value", "target", *(["vs before"] if compare else []),
                       "note"):
            table.add_column(column, overflow="fold")
        for figure in result.figures.values():
            target = figure.target
            mark = "" if target is None else (" [green]✓[/]" if target.met(figure.value)
                                              else " [red]✗[/]")
            row = [figure.name, f"{figure.value:g} {figure.unit}",
                   f"{target}{mark}" if target else ""]
            if compare:
                row.append(ratio(figure.value, before.get(figure.name)))
            table.add_row(*row, escape(figure.note))
        stdout.print(table)
        for note in result.notes:
            stdout.print(f"[yellow]![/] {escape(note)}")
