"""The roster: one row per seat (its URL, whether it runs, its verification) as a terminal table
without tokens, and as the instructor's self-contained HTML page with them (mode 0600)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from rich.markup import escape
from rich.table import Table

from kfbox.apps.workshop.seats import Workshop, folder
from kfbox.engines.base import Engine
from kfbox.host import listen, statefiles
from kfbox.host.statefiles import StateFolder

PAGE = "roster.html"


@dataclass
class RosterRow:
    seat: str
    url: str
    """Where a student opens the seat, without its token."""
    token: str
    """Only ever written to the instructor's page; empty when the seat has none."""
    state: str
    """running | degraded | absent"""
    verification: str
    detail: str
    bundle: str

    @property
    def login_url(self) -> str:
        return f"{self.url}?token={self.token}" if self.token else ""


def rows(workshop: Workshop, engines: dict[str, Engine]) -> list[RosterRow]:
    """Each seat as it is now: asked of the engine, its verification from the record."""
    address = listen.public(workshop.listen)
    found = []
    for seat in workshop.seats:
        engine = engines[seat.name]
        state = engine.status().state
        url = f"http://{address}:{seat.jupyter}/lab"
        # Reading the token of an absent seat would make a new one: it has none to hand out.
        has_token = (
            state != "absent"
            and StateFolder(seat.name).has(StateFolder.TOKEN)
        )
        verified = seat.verification
        found.append(
            RosterRow(
                seat=seat.name,
                url=url,
                token=(engine.token() or "") if has_token else "",
                state=state,
                verification=verified.status if verified else "not verified",
                detail=verified.detail if verified else "",
                bundle=verified.bundle if verified else "",
            )
        )
    return found


MARKS = {"running": "[green]running[/]", "certified": "[green]certified[/]"}


def table(workshop: Workshop, roster: list[RosterRow]) -> Table:
    """The terminal's roster: no tokens (they are only in the page)."""
    result = Table(
        title=f"workshop {workshop.name!r}: {len(roster)} seat(s)",
        caption=escape(f"listening on {listen.describe(workshop.listen)}"),
        title_justify="left",
        caption_justify="left",
        show_edge=False,
    )
    for column in ("seat", "url", "state", "verification"):
        result.add_column(column, no_wrap=column != "verification")
    result.add_column("bundle", overflow="fold")
    for row in roster:
        verification = MARKS.get(row.verification, f"[red]{row.verification}[/]")
        if row.verification == "not verified":
            verification = row.verification
        result.add_row(
            row.seat,
            escape(row.url),
            MARKS.get(row.state, f"[red]{row.state}[/]"),
            verification + (f": {escape(row.detail)}" if row.detail else ""),
            escape(row.bundle),
        )
    return result


def render_page(workshop: Workshop, roster: list[RosterRow]) -> str:
    environment = Environment(
        loader=PackageLoader("kfbox.apps.workshop", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(f"{PAGE}.j2").render(
        workshop=workshop,
        rows=roster,
        listening=listen.describe(workshop.listen),
        loopback=listen.is_loopback(workshop.listen),
        written=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def page_path(workshop: str) -> Path:
    return folder(workshop) / PAGE


def write_page(workshop: Workshop, roster: list[RosterRow]) -> Path:
    """Write the page only its owner can read (0600 from the first byte: it holds tokens)."""
    path = page_path(workshop.name)
    statefiles.write_atomic(path, render_page(workshop, roster), private=True)
    return path
