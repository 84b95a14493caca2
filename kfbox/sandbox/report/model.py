"""What a journey run records: steps with status, duration, metrics and reason (report.json's core)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

StepStatus = Literal["passed", "failed", "skipped", "blocked"]


@dataclass
class StepRecord:
    name: str
    status: StepStatus
    duration_s: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    """Why it failed, was skipped, or which step blocked it."""
    started_at: str = ""
    markers: list[str] = field(default_factory=list)


@dataclass
class JourneyRecord:
    scenario: str
    engine: str
    steps: list[StepRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
