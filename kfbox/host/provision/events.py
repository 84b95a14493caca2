"""Turns ansible-runner's event stream into progress steps (one per role) and task results."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from kfbox.host.progress import Reporter
from kfbox.host.provision.result import TaskResult

OUTCOMES = {
    "runner_on_ok": "ok",
    "runner_on_skipped": "skipped",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
}
MAX_MESSAGE = 300


class StepFailed(Exception):
    """Thrown into a role's step so the Reporter marks it failed; never escapes this module."""


class RunProgress:
    """ansible-runner's `event_handler`: called in the runner's thread for every event, so a
    long apt install shows which task is running while it runs."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.tasks: list[TaskResult] = []
        self.failure: str = ""
        """"role : task: message" of the first failed task, "" while none failed."""
        self.changed: int = 0
        self._role: str | None = None
        self._step: AbstractContextManager[Any] | None = None
        self._update: Callable[[str], None] | None = None

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_task_start":
            self._enter_role(data.get("role") or "")
            self._show(data.get("task", ""))
        elif kind == "runner_retry":
            self._show(f"{data.get('task', '')} (retry {data.get('retries', '?')})")
        elif kind in OUTCOMES:
            self._record(kind, data)
        elif kind == "playbook_on_stats":
            self.changed = sum(data.get("changed", {}).values())
        return True  # keep every event in the artifacts' job_events/

    def finish(self, ok: bool) -> None:
        """Close the open role's step, marked failed unless `ok`."""
        if self._step is not None:
            if ok:
                self._step.__exit__(None, None, None)
            else:
                self._step.__exit__(StepFailed, StepFailed(), None)
        self._step = self._update = self._role = None

    def _enter_role(self, role: str) -> None:
        if role == self._role:
            return
        self.finish(ok=True)
        self._role = role
        self._step = self.reporter.step(f"Provision: {role.replace('_', ' ') or 'host'}")
        self._update = self._step.__enter__()

    def _show(self, detail: str) -> None:
        if self._update is not None:
            self._update(detail)

    def _record(self, kind: str, data: dict[str, Any]) -> None:
        result = data.get("res", {})
        status = OUTCOMES[kind]
        if status == "failed" and data.get("ignore_errors"):
            status = "ok"
        elif status == "ok" and result.get("changed"):
            status = "changed"
        task = data.get("task", "")
        self.tasks.append(TaskResult(role=data.get("role") or "", task=task, status=status))
        if status in ("failed", "unreachable") and not self.failure:
            where = f"{data['role']} : {task}" if data.get("role") else task
            self.failure = f"{where}: {failure_message(result)}"


def failure_message(result: dict[str, Any]) -> str:
    """One line from a failed task's result: its message, plus the last line of the command's
    (or the module's) stderr unless the message already says it."""
    failed_items = [item for item in result.get("results", []) if item.get("failed")]
    if failed_items:  # a loop: the first failed item says more than "One or more items failed"
        result = failed_items[0]
    message = str(result.get("msg") or "").strip()
    for key in ("stderr", "module_stderr"):
        lines = str(result.get(key) or "").strip().splitlines()
        if lines and lines[-1].strip() not in message:
            message = f"{message}: {lines[-1].strip()}" if message else lines[-1].strip()
            break
    return " ".join(message.split())[:MAX_MESSAGE] or "failed without a message"
