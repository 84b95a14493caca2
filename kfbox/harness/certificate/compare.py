"""Certificates side by side (`kfbox results --compare`): whether machines run provably the same
sandbox — the same offline bundle, verdicts, software and configuration — and where not, one
table of the fields that differ."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from kfbox.harness.certify import Certificate

ABSENT = "—"
CONFIGURATION = ("engine", "profile", "scenario", "gpus", "source", "listen")
"""What was certified; the sandbox's name is left out: every seat or machine has its own."""


def facts(certificate: Certificate) -> dict[str, str]:
    """The fields two certificates of identical sandboxes share, as field → value."""
    config = certificate.configuration
    found = {"bundle": config.bundle or "(online)"}
    found |= {f"configuration.{name}": str(getattr(config, name)) for name in CONFIGURATION}
    found |= {f"verdict.{name}": "certified" if verdict.certified else "not certified"
              for name, verdict in certificate.verdicts.items()}
    found |= {f"requirement.{r.id} [{r.where}]": r.status for r in certificate.requirements}
    found |= {f"software.{name}": version for name, version in certificate.software.items()}
    return found


@dataclass
class Comparison:
    labels: list[str]
    shared: dict[str, str]
    """Fields every certificate has with the same value."""
    differences: list[tuple[str, list[str]]]
    """Field → its value in each certificate (ABSENT where one lacks it)."""

    @property
    def identical(self) -> bool:
        return not self.differences


def compare(certificates: list[Certificate], labels: list[str]) -> Comparison:
    every = [facts(c) for c in certificates]
    fields = list(dict.fromkeys(key for found in every for key in found))
    shared: dict[str, str] = {}
    differences: list[tuple[str, list[str]]] = []
    for field in fields:
        values = [found.get(field, ABSENT) for found in every]
        if len(set(values)) == 1:
            shared[field] = values[0]
        else:
            differences.append((field, values))
    return Comparison(labels, shared, differences)


def _installed_from(bundle: str) -> str:
    """Where the sandboxes came from, in words: online, or the offline bundle's digest."""
    return "installed online" if bundle == "(online)" else f"offline bundle {_short(bundle)}"


def _short(value: str) -> str:
    """Digests shortened so the table fits a terminal; the rest as they are."""
    return value[:16] + "…" if len(value) == 64 and value.isalnum() else value


def render(comparison: Comparison) -> RenderableType:
    lines: list[RenderableType] = [
        Text(f"[{i}] {label}") for i, label in enumerate(comparison.labels, start=1)
    ]
    if comparison.identical:
        bundle = comparison.shared.get("bundle", "(online)")
        verdicts = ", ".join(f"{k.removeprefix('verdict.')} {v}"
                             for k, v in comparison.shared.items() if k.startswith("verdict."))
        software = sum(k.startswith("software.") for k in comparison.shared)
        lines.append(Text(
            f"identical: {_installed_from(bundle)}, {verdicts}, the same {software} software "
            "versions and configuration", style="green"))
        return Group(*lines)
    table = Table(title=f"{len(comparison.differences)} field(s) differ")
    table.add_column("field")
    for i in range(1, len(comparison.labels) + 1):
        table.add_column(f"[{i}]")
    for field, values in comparison.differences:  # Text: '[core]' is not rich markup here
        table.add_row(Text(field), *(Text(_short(v)) for v in values))
    return Group(*lines, table)
