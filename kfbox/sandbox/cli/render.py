"""Tables and JSON for the CLI: checks, sandbox status, timings."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from kfbox.sandbox.engines.base import Check, SandboxStatus

MARKS = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}


def checks_table(checks: list[Check]) -> Table:
    table = Table(title="preflight", title_justify="left", show_edge=False)
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        table.add_row(
            check.name,
            MARKS[check.status],
            check.detail,
            check.fix if check.status != "pass" else "",
        )
    return table


def status_table(status: SandboxStatus, login_urls: dict[str, str] | None = None) -> Table:
    table = Table(
        title=f"sandbox {status.name!r} ({status.engine}): {status.state}",
        title_justify="left",
        show_edge=False,
    )
    for column in ("component", "health", "url", "detail"):
        table.add_column(column, overflow="fold")
    for comp in status.components:
        health = "[green]healthy[/]" if comp.healthy else "[red]unhealthy[/]"
        url = (login_urls or {}).get(comp.name, comp.url)
        table.add_row(comp.name, health, url, comp.detail)
    return table


def print_json(console: Console, data: Any) -> None:
    console.print_json(json.dumps(data, default=str))
