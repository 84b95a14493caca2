"""What a journey run records: steps with status, duration, metrics and reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

StepStatus = Literal["passed", "failed", "skipped", "blocked"]

JOURNEY_STEPS: tuple[str, ...] = ("notebook", "build", "train", "tune", "serve")
"""The Critical User Journey's steps, in the order they run."""


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
    """The pytest markers of the step's test; a profile finds its journeys through them."""


@dataclass
class JourneyRecord:
    scenario: str
    engine: str
    steps: list[StepRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def markers(self) -> set[str]:
        """Every marker any step carries: the profiles this journey can count for."""
        return {marker for step in self.steps for marker in step.markers}

    def step(self, name: str) -> StepRecord | None:
        return next((s for s in self.steps if s.name == name), None)
