"""What a bench run reports: named figures with their units and targets, the host they were
measured on, JSON out and in, and the ratio of each figure to an earlier run's."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kfbox.harness.host import HostFacts, collect_host_facts
from kfbox.host.errors import UsageError

KIND = "kfbox-bench"


@dataclass(frozen=True)
class Target:
    limit: float
    below: bool = True
    """The figure should be at most `limit` (at least, when False)."""

    def met(self, value: float) -> bool:
        return value <= self.limit if self.below else value >= self.limit

    def __str__(self) -> str:
        return f"{'≤' if self.below else '≥'} {self.limit:g}"


TARGETS: dict[str, Target] = {
    "warm_up_s": Target(15),
    "journey_s": Target(40),
    "journey_five_steps_wall_s": Target(25),  # issue 21
    "train_overhead_ratio": Target(1.05),  # issue 21 (1.1 before)
    "cli_help_s": Target(0.5),  # issue 21
    "cli_status_s": Target(0.5),  # issue 21
    "tracking_overhead_ratio": Target(1.05),
    "idle_memory_mib": Target(150),
    "journey_peak_memory_mib": Target(3072),
    "serve_errors": Target(0),
    "soak_failures": Target(0),
    "soak_leftovers": Target(0),
}
"""The targets kfbox is held to (issues and README); a figure without one is reported as is."""


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    note: str = ""

    @property
    def target(self) -> Target | None:
        return TARGETS.get(self.name)


@dataclass
class BenchRun:
    host: HostFacts = field(default_factory=collect_host_facts)
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, note: str = "") -> None:
        self.figures[name] = Figure(name, round(float(value), 3), unit, note)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "host": asdict(self.host),
            "figures": {
                name: {"value": f.value, "unit": f.unit, "note": f.note,
                       "target": str(f.target) if f.target else None,
                       "within_target": f.target.met(f.value) if f.target else None}
                for name, f in self.figures.items()
            },
            "notes": self.notes,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def read_figures(path: Path) -> dict[str, float]:
    """An earlier run's figures (name → value), from the JSON `--json`/`--out` wrote."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"--compare {str(path)!r} cannot be read ({exc.strerror})",
                         fix="give the JSON an earlier `kfbox bench --out FILE` wrote") from None
    except ValueError:
        raise UsageError(f"--compare {str(path)!r} is not JSON",
                         fix="give the JSON an earlier `kfbox bench --out FILE` wrote") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise UsageError(f"--compare {str(path)!r} is not a kfbox bench result",
                         fix="give the JSON an earlier `kfbox bench --out FILE` wrote")
    return {name: float(item["value"]) for name, item in data["figures"].items()}


def ratio(now: float, before: float | None) -> str:
    """now / before, as the compare column shows it ('—' when there is nothing to divide)."""
    if before is None or before == 0:
        return "—"
    return f"{now / before:.2f}x"
