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


def print_status(
    console: Console,
    status: SandboxStatus,
    login_urls: dict[str, str] | None = None,
    *,
    needs_token: list[str] | None = None,
) -> None:
    """The sandbox's state; its components with health and detail; then each URL (a component's,
    or its login URL with the token from `login_urls`, on request) and each kept workload's, on
    a line of its own that is never wrapped or cut: a table folds or crops a cell to the
    terminal's width (80 when piped), and a URL or token cut in two opens nothing. Last, how
    to log in to those in `needs_token` when their tokens are not shown. An absent sandbox
    with nothing kept is its one line."""
    plain = {"soft_wrap": True, "markup": False, "emoji": False}
    console.print(f"sandbox {status.name!r} ({status.engine}): {status.state}", **plain)
    if status.components:
        table = Table(show_edge=False)
        for column in ("component", "health", "detail"):
            table.add_column(column, overflow="fold")
        for comp in status.components:
            health = "[green]healthy[/]" if comp.healthy else "[red]unhealthy[/]"
            table.add_row(escape(comp.name), health, escape(comp.detail))
        console.print(table)
    for comp in status.components:
        url = (login_urls or {}).get(comp.name, comp.url)
        if url:
            console.print(f"{comp.name}: {url}", **plain)
    if status.workloads:
        console.print("kept workloads (`kfbox down` removes them):", **plain)
    for workload in status.workloads:
        where = workload.url or "no published port"
        console.print(f"  {workload.name} ({workload.run}): {where}", **plain)
    if status.facts.get("listen"):
        console.print(f"listening on {describe(status.facts['listen'])}", **plain)
    if needs_token and not login_urls:
        if len(needs_token) == 1:
            console.print(f"{needs_token[0]} asks for its token: `kfbox status --show-token` "
                          "shows the URL with it", **plain)
        else:
            console.print(f"{', '.join(needs_token[:-1])} and {needs_token[-1]} ask for their "
                          "login: `kfbox status --show-token` shows each URL with it", **plain)


def print_json(console: Console, data: Any) -> None:
    console.print_json(json.dumps(data, default=str))
