"""Terminal views of a certificate: the summary `certify` prints, and `results` in two modes."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from kfbox.harness.certify import Certificate
from kfbox.harness.requirements import NOTEBOOK_WORK, STEPS
from kfbox.harness.verdict import RequirementResult

STYLES = {"passed": "green", "failed": "red", "skipped": "yellow", "blocked": "dim",
          "interrupted": "magenta", "not-run": "yellow"}


def _status(status: str) -> Text:
    return Text(status, style=STYLES.get(status, ""))


def _step_columns(certificate: Certificate) -> list[str]:
    """The journey's steps in run order, then any other step a record carries."""
    extra = [s.name for j in certificate.journeys for s in j.steps if s.name not in STEPS]
    return [*STEPS, *dict.fromkeys(extra)]


def verdict_lines(certificate: Certificate) -> Group:
    lines: list[RenderableType] = []
    for name, item in certificate.verdicts.items():
        mark = "[green]CERTIFIED[/]" if item.certified else "[red]NOT CERTIFIED[/]"
        lines.append(Text.from_markup(f"profile {name}: {mark}"))
        lines += [Text(f"  - {reason}") for reason in item.reasons]
        lines += [Text(f"  ! {warning}", style="yellow") for warning in item.warnings]
    return Group(*lines)


def configuration_line(certificate: Certificate) -> Text:
    config = certificate.configuration
    source = f"bundle {config.bundle[:19]}" if config.source == "bundle" else "online"
    return Text(
        f"{config.engine} sandbox {config.sandbox!r}, scenario {config.scenario or '?'}, "
        f"{config.gpus} GPU, {source}, listening on {config.listen}",
        style="dim",
    )


def summary(certificate: Certificate) -> Group:
    """One row per journey, one column per step, then a person's notebook work requirement by
    requirement, then the verdicts with their reasons; a profile that runs no journey
    (notebook) shows its requirements instead."""
    if not certificate.journeys and certificate.requirements:
        return Group(configuration_line(certificate), _requirement_rows(certificate),
                     verdict_lines(certificate))
    table = Table(title=f"kfbox certify --profile {certificate.profile}",
                  title_justify="left", show_edge=False,
                  caption=None if certificate.journeys else "no journey ran",
                  caption_justify="left")
    columns = _step_columns(certificate)
    for column in ("journey", *columns, "total"):
        table.add_column(column)
    for journey in certificate.journeys:
        cells: list[RenderableType] = [f"{journey.scenario} ({journey.variant})"]
        for name in columns:
            step = journey.step(name)
            cells.append(_status(step.status) if step else Text("—", style="dim"))
        cells.append(f"{sum(s.duration_s for s in journey.steps):.1f}s")
        table.add_row(*cells)
    person = [r for r in certificate.requirements if r.where == NOTEBOOK_WORK]
    extra = [_requirement_rows(certificate, person, "a person's work from the notebook")] \
        if person else []
    return Group(configuration_line(certificate), table, *extra, verdict_lines(certificate))


def _requirement_rows(certificate: Certificate, results: list[RequirementResult] | None = None,
                      title: str = "") -> Table:
    table = Table(title=title or f"kfbox certify --profile {certificate.profile}",
                  title_justify="left", show_edge=False)
    for column in ("requirement", "status", "what was seen"):
        table.add_column(column, overflow="fold")
    for result in certificate.requirements if results is None else results:
        seen = result.evidence[0].detail if result.evidence else result.reason
        table.add_row(result.id, _status(result.status), seen)
    return table


def detailed(certificate: Certificate) -> Group:
    """Every requirement with its evidence, every step with duration and metrics, the software,
    components, host, suite and verdicts."""
    suite, host = certificate.suite, certificate.host
    head = Text(
        f"kfbox {certificate.kfbox_version}, schema {certificate.schema_version}, "
        f"{certificate.created_at}\n"
        f"host: {host.os}, {host.cpu_count} CPU ({host.cpu_model}), {host.memory_gib} GiB, "
        f"{host.gpu.count} GPU {', '.join(host.gpu.names)}\n"
        f"pytest -m \"{suite.pytest_markers}\": exit {suite.exit_code}, {suite.tests} tests, "
        f"{suite.failures} failed, {suite.errors} errors, {suite.skipped} skipped, "
        f"{suite.duration_s:.1f}s" + (f"\n{suite.error}" if suite.error else "")
    )
    requirements = Table(title="requirements", title_justify="left", show_edge=False)
    for column in ("requirement", "level", "where", "status", "evidence"):
        requirements.add_column(column, overflow="fold")
    for result in certificate.requirements:
        evidence = "; ".join(c.detail for c in result.evidence) or result.reason
        requirements.add_row(result.id, result.level, result.where, _status(result.status),
                             evidence)
    steps = Table(title="steps", title_justify="left", show_edge=False)
    for column in ("journey", "step", "status", "duration", "metrics", "reason"):
        steps.add_column(column, overflow="fold")
    for journey in certificate.journeys:
        for step in journey.steps:
            metrics = ", ".join(f"{k}={v}" for k, v in step.metrics.items())
            steps.add_row(f"{journey.scenario} ({journey.variant})", step.name,
                          _status(step.status), f"{step.duration_s:.1f}s", metrics, step.reason)
    software = Table(title="software", title_justify="left", show_edge=False)
    for column in ("software", "version"):
        software.add_column(column, overflow="fold")
    for name, version in sorted(certificate.software.items()):
        software.add_row(name, version)
    components = Table(title="components", title_justify="left", show_edge=False)
    for column in ("component", "health", "image", "detail"):
        components.add_column(column, overflow="fold")
    for comp in certificate.sandbox.components if certificate.sandbox else []:
        health = Text("healthy", style="green") if comp.healthy else Text("unhealthy", style="red")
        components.add_row(comp.name, health, comp.image, comp.detail)
    return Group(head, configuration_line(certificate), requirements, steps, software,
                 components, verdict_lines(certificate))
