"""What a provisioning run did: each task's outcome per role, and the totals the CLI reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TaskResult:
    role: str
    """The role the task belongs to ("" for a task directly in a play)."""
    task: str
    status: str
    """ok | changed | skipped | failed | unreachable"""


@dataclass
class ProvisionResult:
    ok: bool
    changed: int
    """Tasks that changed the host, from ansible's own recap."""
    tasks: list[TaskResult] = field(default_factory=list)
    artifacts: Path = Path()
    """This run's ansible-runner artifacts: `stdout` (the full log) and `job_events/`."""
    seconds: float = 0.0
    gpu: bool = False
    """Whether the NVIDIA container toolkit play ran."""

    def by_role(self) -> dict[str, Counter[str]]:
        """{role: Counter({status: tasks})}, in the order the roles ran."""
        summary: dict[str, Counter[str]] = {}
        for task in self.tasks:
            summary.setdefault(task.role, Counter())[task.status] += 1
        return summary

    def changed_tasks(self) -> list[TaskResult]:
        return [task for task in self.tasks if task.status == "changed"]
