"""Pipelines on lite: a compiled KFP pipeline run by kfp.local's DockerRunner on the sandbox's
engine, each task a labelled workload within the sandbox's limits and with no network, its
artifacts written straight into the model store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker

from kfbox.engines.lite.components import workload_limits
from kfbox.engines.platform import (
    PipelineResult,
    PipelineRun,
    StepFailure,
    TaskRun,
    error_line,
    plain,
)
from kfbox.host.config import Resources

RUNNER = "kfbox.engines.lite.pipeline_runner"
RAISED = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception): \S")
"""A traceback's last line: what a task raised."""
# kfp 2.17.3 kfp/local/task_dispatcher.py and logging_utils.py: "HH:MM:SS.mmm - INFO - Executing
# task 'NAME'" when a task starts, "... - Task 'NAME' finished with status STATUS" when it ends.
# Iterations of a ParallelFor share their task's name, so ends pair with starts in order.
# Each such line is one write (logging's StreamHandler), but kfp's separator, `print('-' *
# columns)` (logging_utils.py), is two: a parallel task's line can land between the dashes and
# their newline, so a line may carry the dashes before its timestamp.
TASK_LINE = re.compile(
    r"(\d\d):(\d\d):(\d\d\.\d+) - \w+ - "
    r"(?:Executing task '([^']+)'|Task '([^']+)' finished with status (\w+))$"
)


class LitePipelines:
    def __init__(self, client: docker.DockerClient, docker_host: str | None, store_volume: str,
                 labels: dict[str, str], resources: Resources, run_dir: Path) -> None:
        self.client = client
        self.docker_host = docker_host
        """The sandbox's engine, for the runner's DOCKER_HOST (None: the host's own)."""
        self.store_volume = store_volume
        self.labels = labels
        self.resources = resources
        self.run_dir = run_dir

    def _root(self, store_key: str) -> Path:
        """The run's pipeline root: a folder of the model store's volume, at the same path for
        the runner and the engine (DockerRunner binds it at its own path), owned as the volume
        is (in a rootless engine, a container's root writes as the engine's user)."""
        store = Path(self.client.volumes.get(self.store_volume).attrs["Mountpoint"])
        owner = store.stat()
        root = store
        for part in Path(store_key).parts:
            root = root / part
            root.mkdir(exist_ok=True)
            os.chown(root, owner.st_uid, owner.st_gid)
        return root

    def run(self, run: PipelineRun) -> PipelineResult:
        started = time.monotonic()
        root = self._root(run.store_key)
        work = self.run_dir / "pipelines" / run.name
        work.mkdir(parents=True, exist_ok=True)
        request = {
            "package": str(run.package),
            "pipeline_root": str(root),
            "result": str(work / "result.json"),
            # Each task: a sandbox workload (its labels, so `close` and `down` find it), within
            # the sandbox's per-workload limits, and with no network: a task reaches nothing.
            "container": {"labels": self.labels, "network_mode": "none",
                          **workload_limits(self.resources, 0)},
        }
        (work / "request.json").write_text(json.dumps(request))
        env = dict(os.environ)
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        try:
            done = subprocess.run([sys.executable, "-m", RUNNER, str(work / "request.json")],
                                  env=env, capture_output=True, text=True,
                                  timeout=run.timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            logs = plain((exc.stdout or b"").decode(errors="replace")
                         if isinstance(exc.stdout, bytes) else exc.stdout or "")
            raise StepFailure(f"pipeline {run.name} still running after {run.timeout_s:g} s",
                              logs=logs) from exc
        logs = plain(done.stdout + done.stderr)
        if done.returncode != 0 or not (work / "result.json").is_file():
            raise StepFailure(f"pipeline {run.name} could not run: {error_line(logs)}", logs=logs)
        result = json.loads((work / "result.json").read_text())
        tasks = task_runs(logs)
        failed = [t.name for t in tasks if t.state != "SUCCESS"]
        error = result["error"] or (
            f"task {failed[0]} failed: {failure_cause(logs)}" if failed else "")
        return PipelineResult(
            succeeded=not error and bool(tasks),
            tasks=tasks,
            outputs={name: self._key(value, root, run.store_key)
                     for name, value in result["outputs"].items()},
            logs=logs,
            duration_s=time.monotonic() - started,
            error=error,
            task_outputs=task_outputs(root),
        )

    @staticmethod
    def _key(value: Any, root: Path, store_key: str) -> str:
        """An output artifact's model store key (its path under the run's root), else the
        parameter's value as text."""
        if isinstance(value, dict) and value.get("path"):
            return str(Path(store_key) / Path(value["path"]).relative_to(root))
        return json.dumps(value) if not isinstance(value, str) else value


def task_runs(logs: str) -> list[TaskRun]:
    """Each task run kfp.local logged, in the order they started: its state and time."""
    runs: list[TaskRun] = []
    started: dict[str, list[tuple[TaskRun, float]]] = {}
    for line in logs.splitlines():
        found = TASK_LINE.search(line.strip())
        if not found:
            continue
        hours, minutes, seconds, began, ended, state = found.groups()
        at = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        if began:
            run = TaskRun(began, "RUNNING")
            runs.append(run)
            started.setdefault(began, []).append((run, at))
        elif started.get(ended):
            run, since = started[ended].pop(0)
            run.state = state
            run.duration_s = round((at - since) % 86400, 3)  # a run across midnight
    return runs


def failure_cause(logs: str) -> str:
    """What the failed task raised (its traceback's last line), else the run's error line."""
    raised = [line.strip() for line in logs.splitlines() if RAISED.match(line.strip())]
    return raised[-1] if raised else error_line(logs)


def task_outputs(root: Path) -> dict[str, dict]:
    """Each task's output parameters, from the `executor_output.json` its executor wrote under
    the run's folder (kfp 2.17.3, kfp/dsl/executor.py: `parameterValues`), by its place in the
    run: the path below the run's own folder."""
    found = {}
    for written in sorted(root.glob("*/**/executor_output.json")):
        place = written.parent.relative_to(root)
        found[str(Path(*place.parts[1:]))] = json.loads(written.read_text()).get(
            "parameterValues", {})
    return found
