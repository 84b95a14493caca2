"""What a run records, written by the pytest plugin inside the run and read back by the runner:
each journey's steps (status, duration, metrics, the checks made against requirements), its
training curve and trials, the component tests' checks, and the sandbox as the session saw it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter

StepStatus = Literal["passed", "failed", "skipped", "blocked", "interrupted"]
"""blocked: an earlier step of the journey failed; interrupted: the run was stopped (Ctrl-C)."""


@dataclass
class CheckRecord:
    """One check of one requirement: what was compared and whether it held."""

    requirement: str
    passed: bool
    detail: str
    """What was checked, with the values: 'accuracy 0.9733 >= 0.93'."""
    test_id: str = ""
    """The pytest node id of the test that made the check (junit.xml names it too)."""


@dataclass
class StepRecord:
    name: str
    status: StepStatus
    duration_s: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    """Why it failed, was skipped, or which step blocked it."""
    started_at: str = ""
    test_id: str = ""
    checks: list[CheckRecord] = field(default_factory=list)


@dataclass
class TrialRecord:
    name: str
    parameters: dict[str, str]
    objective: float | None
    """The trial's value of the tuning objective; null when it reported none."""
    succeeded: bool
    best: bool = False
    duration_s: float = 0.0
    """The trial's wall time, its job's start-up included."""
    train_s: float | None = None
    """The script's own training time (its `train_seconds=` line); null when it printed none."""


@dataclass
class JourneyRecord:
    scenario: str
    variant: str
    engine: str
    steps: list[StepRecord] = field(default_factory=list)
    curve: dict[str, list[float]] = field(default_factory=dict)
    """The training job's per-epoch series (every value of each `name=value` line it printed)."""
    trials: list[TrialRecord] = field(default_factory=list)
    objective: str = ""
    goal: str = ""

    def step(self, name: str) -> StepRecord | None:
        return next((s for s in self.steps if s.name == name), None)


@dataclass
class ComponentRecord:
    name: str
    healthy: bool
    detail: str = ""
    url: str = ""
    image: str = ""
    """The component's image (repo:tag@content id) or release, as the engine reports it."""


@dataclass
class SandboxRecord:
    """The sandbox under test as the session saw it (components at the session's end, or at
    its start when the engine could not be asked again), and what its engine declares."""

    name: str
    engine: str
    state: str
    components: list[ComponentRecord] = field(default_factory=list)
    capabilities: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    """Why the engine could not be asked (then components are from an earlier look, or none)."""


@dataclass
class RunRecord:
    scenario: str
    journeys: list[JourneyRecord] = field(default_factory=list)
    checks: list[CheckRecord] = field(default_factory=list)
    """The component tests' checks (requirements checked outside a journey)."""
    sandbox: SandboxRecord | None = None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, default=str))


_RUN = TypeAdapter(RunRecord)


def read_run(path: Path) -> RunRecord | None:
    """The record a run's plugin wrote; None when the run never got that far."""
    if not path.is_file():
        return None
    return _RUN.validate_json(path.read_bytes())
