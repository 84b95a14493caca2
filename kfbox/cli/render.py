"""Tables and JSON for the CLI: checks, sandbox status, timings."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kfbox.engines.base import SandboxStatus
from kfbox.host.listen import describe
from kfbox.host.preflight import Check

MARKS = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}


def checks_table(checks: list[Check]) -> Table:
    table = Table(title="preflight", title_justify="left", show_edge=False)
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        table.add_row(
            escape(check.name),
            MARKS[check.status],
            escape(check.detail),
            escape(check.fix) if check.status != "pass" else "",
        )
    return table


def status_table(
    status: SandboxStatus,
    login_urls: dict[str, str] | None = None,
    *,
    needs_token: list[str] | None = None,
) -> Table:
    """Components with health, URL and detail; `login_urls` replace the URLs (with their
    tokens, on request), else a caption says how to log in to those in `needs_token`."""
    lines = []
    if status.facts.get("listen"):
        lines.append(f"listening on {describe(status.facts['listen'])}")
    if needs_token and not login_urls:
        lines.append(f"{', '.join(needs_token)} asks for its token: `kfbox status --show-token` "
                     "shows the URL with it")
    caption = "\n".join(lines)
    table = Table(
        title=f"sandbox {status.name!r} ({status.engine}): {status.state}",
        title_justify="left",
        show_edge=False,
        caption=escape(caption) if caption else None,
        caption_justify="left",
    )
    for column in ("component", "health", "url", "detail"):
        table.add_column(column, overflow="fold")
    for comp in status.components:
        health = "[green]healthy[/]" if comp.healthy else "[red]unhealthy[/]"
        url = (login_urls or {}).get(comp.name, comp.url)
        table.add_row(escape(comp.name), health, escape(url), escape(comp.detail))
    return table


def print_json(console: Console, data: Any) -> None:
    console.print_json(json.dumps(data, default=str))
