"""`kfbox workshop plan|up|status|reset|down`: one host serving a class, a verified sandbox per
seat, and the roster the instructor hands out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kfbox.apps.workshop.defaults import DEFAULT_BASE_PORT, DEFAULT_NAME
from kfbox.cli.console import err, out
from kfbox.cli.lifecycle import ListenFlag
from kfbox.host.errors import KfboxError
from kfbox.host.progress import Reporter

workshop_app = typer.Typer(
    name="workshop",
    help="A class on one host: N verified sandboxes (seats), each with its own ports and token. "
    f"--name names the workshop (default: {DEFAULT_NAME}); its seats are NAME-1 "
    "to NAME-N.",
    no_args_is_help=True,
)
SeatsFlag = Annotated[int | None, typer.Option("--seats", help="How many seats")]
OutFlag = Annotated[
    Path, typer.Option(help="Each seat's verification bundles go under OUT/WORKSHOP/SEAT")
]


def _name(ctx: typer.Context) -> str:
    return ctx.obj.name or DEFAULT_NAME


def _show(workshop, rows, page: Path) -> None:
    """The roster on the terminal (no tokens) and where the page with them is."""
    # Imported here for start-up time: the roster loads jinja2 and the engines.
    from kfbox.apps.workshop.roster import table

    out.print(table(workshop, rows))
    out.print(f"roster with each seat's token (mode 0600, keep it to yourself): {page}",
              soft_wrap=True)


def _not_certified(workshop) -> None:
    failed = [
        s.name for s in workshop.seats
        if s.verification is None or s.verification.status != "certified"
    ]
    if failed:
        raise KfboxError(
            f"{len(failed)} of {len(workshop.seats)} seats not certified: {', '.join(failed)}",
            fix="each seat's certify.log sits beside its bundles; "
            "`kfbox workshop reset SEAT` makes a fresh one",
        )


@workshop_app.command()
def plan(
    ctx: typer.Context,
    seats: Annotated[int, typer.Option("--seats", help="How many seats")],
) -> None:
    """Whether this host can hold N seats, from measured per-seat memory and CPU; starts
    nothing. Exit 0 when they fit, 3 when they do not."""
    # Imported here for start-up time: the seat records load the engines (the Docker SDK).
    from kfbox.apps.workshop import seats as seat_records
    from kfbox.apps.workshop.capacity import plan as make_plan

    chosen = make_plan(seat_records.check_seats(seats))
    for line in chosen.lines():
        out.print(line, soft_wrap=True)
    if not chosen.fits:
        raise chosen.refusal()
    out.print(f"verdict: {chosen.verdict()}", soft_wrap=True)


@workshop_app.command()
def up(
    ctx: typer.Context,
    seats: SeatsFlag = None,
    base_port: Annotated[
        int | None,
        typer.Option(
            help="Seat i gets ports BASE+2(i-1) (JupyterLab) and BASE+2(i-1)+1 (registry) "
            f"(default: {DEFAULT_BASE_PORT})"
        ),
    ] = None,
    listen: ListenFlag = None,
    memory: Annotated[
        str | None,
        typer.Option(help="Per-seat memory limit of each notebook and workload, e.g. 2g"),
    ] = None,
    cpus: Annotated[
        float | None, typer.Option(help="Per-seat CPU limit of each notebook and workload")
    ] = None,
    parallel: Annotated[
        int | None, typer.Option(help="Seats verified at once (default: one per 2 cores)")
    ] = None,
    out: OutFlag = Path("kfbox-results"),
) -> None:
    """Bring up (or repair) every seat, verify each with the quick journey, write the roster."""
    # Imported here for start-up time: the classroom loads the engines and the harness.
    from kfbox.apps.workshop import classroom

    limits: dict[str, Any] = {
        key: value for key, value in (("memory", memory), ("cpus", cpus)) if value is not None
    }
    workshop, rows, page = classroom.up(
        _name(ctx),
        count=seats,
        base_port=base_port,
        listen=listen,
        resources=limits,
        parallel=parallel,
        out=out,
        config=ctx.obj.config,
        reporter=Reporter(),
    )
    _show(workshop, rows, page)
    _not_certified(workshop)


@workshop_app.command()
def status(ctx: typer.Context) -> None:
    """Each seat's URL, state and verification (no tokens: they are in the roster page, which
    this writes again). Exit 1 when a seat is not running."""
    # Imported here for start-up time: the classroom loads the engines and the harness.
    from kfbox.apps.workshop import classroom

    workshop, rows, page = classroom.status(_name(ctx), ctx.obj.config)
    _show(workshop, rows, page)
    if any(row.state != "running" for row in rows):
        raise typer.Exit(1)


@workshop_app.command()
def reset(
    ctx: typer.Context,
    seat: Annotated[str, typer.Argument(help="The seat to replace, e.g. class-2")],
    out: OutFlag = Path("kfbox-results"),
) -> None:
    """Replace a seat with a fresh one on the same ports: new token, new volumes, nothing kept
    from the old one; verified like the others."""
    # Imported here for start-up time: the classroom loads the engines and the harness.
    from kfbox.apps.workshop import classroom

    workshop, rows, page = classroom.reset(
        _name(ctx), seat, out=out, config=ctx.obj.config, reporter=Reporter()
    )
    _show(workshop, rows, page)
    _not_certified(workshop)


@workshop_app.command()
def down(ctx: typer.Context) -> None:
    """Remove every seat (containers, networks, volumes, state) and the roster, then prove
    nothing labelled with a seat is left."""
    # Imported here for start-up time: the classroom loads the engines and the harness.
    from kfbox.apps.workshop import classroom

    name = _name(ctx)
    removed, left = classroom.down(name, ctx.obj.config, Reporter())
    if left:
        err.print(f"[red]still present:[/] {', '.join(left)}", soft_wrap=True)
        raise typer.Exit(1)
    err.print(
        f"workshop {name!r}: {removed} seat(s) removed; nothing labelled with them is left "
        "and no state remains" if removed else f"workshop {name!r}: nothing to remove",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(workshop_app)
