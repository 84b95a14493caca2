"""Terminal views of a report: the summary `certify` prints, and `results` in two modes."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from kfbox.sandbox.report.document import Report
from kfbox.sandbox.report.model import JOURNEY_STEPS

STYLES = {"passed": "green", "failed": "red", "skipped": "yellow", "blocked": "dim"}


def _status(status: str) -> Text:
    return Text(status, style=STYLES.get(status, ""))


def _step_columns(report: Report) -> list[str]:
    """The journey's steps in run order, then any other step a record carries."""
    extra = [s.name for j in report.journeys for s in j.steps if s.name not in JOURNEY_STEPS]
    return [*JOURNEY_STEPS, *dict.fromkeys(extra)]


def verdict_lines(report: Report) -> Group:
    lines: list[RenderableType] = []
    for name, item in report.verdicts.items():
        mark = "[green]CERTIFIED[/]" if item.certified else "[red]NOT CERTIFIED[/]"
        lines.append(Text.from_markup(f"profile {name}: {mark}"))
        lines += [Text(f"  - {reason}") for reason in item.reasons]
    return Group(*lines)


def summary(report: Report) -> Group:
    """One row per journey, one column per step, then the verdicts with their reasons."""
    table = Table(title=f"kfbox certify --profile {report.profile} ({report.engine})",
                  title_justify="left", show_edge=False,
                  caption=None if report.journeys else "no journey ran", caption_justify="left")
    columns = _step_columns(report)
    for column in ("journey", *columns, "total"):
        table.add_column(column)
    for journey in report.journeys:
        cells: list[RenderableType] = [journey.scenario]
        for name in columns:
            step = journey.step(name)
            cells.append(_status(step.status) if step else Text("—", style="dim"))
        cells.append(f"{sum(s.duration_s for s in journey.steps):.1f}s")
        table.add_row(*cells)
    return Group(table, verdict_lines(report))


def detailed(report: Report) -> Group:
    """Every step with duration, metrics and reason; components; host; suite; verdicts."""
    suite = report.suite
    head = Text(
        f"kfbox {report.kfbox_version}, schema {report.schema_version}, {report.created_at}\n"
        f"engine {report.engine}, sandbox {report.sandbox}\n"
        f"host: {report.host.os}, {report.host.cpu_count} CPU ({report.host.cpu_model}), "
        f"{report.host.memory_gib} GiB, {report.host.gpu.count} GPU "
        f"{', '.join(report.host.gpu.names)}\n"
        f"pytest -m \"{suite.pytest_markers}\": exit {suite.exit_code}, {suite.tests} tests, "
        f"{suite.failures} failed, {suite.errors} errors, {suite.skipped} skipped, "
        f"{suite.duration_s:.1f}s" + (f"\n{suite.error}" if suite.error else "")
    )
    steps = Table(title="steps", title_justify="left", show_edge=False)
    for column in ("journey", "step", "status", "duration", "metrics", "reason"):
        steps.add_column(column, overflow="fold")
    for journey in report.journeys:
        for step in journey.steps:
            metrics = ", ".join(f"{k}={v}" for k, v in step.metrics.items())
            steps.add_row(journey.scenario, step.name, _status(step.status),
                          f"{step.duration_s:.1f}s", metrics, step.reason)
    components = Table(title="components", title_justify="left", show_edge=False)
    for column in ("component", "health", "version", "digest", "detail"):
        components.add_column(column, overflow="fold")
    for comp in report.components:
        health = Text("healthy", style="green") if comp.healthy else Text("unhealthy", style="red")
        components.add_row(comp.name, health, comp.version, comp.digest, comp.detail)
    return Group(head, steps, components, verdict_lines(report))
