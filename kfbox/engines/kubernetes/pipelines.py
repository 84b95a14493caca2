"""Pipelines on the Kubernetes engines: the compiled file uploaded to KFP standalone (the lock's
`pipelines`) with KFP's own client, through a port-forward to its API server, run in a `kfbox`
experiment and watched to its end; each task's state and time, and which task failed, come from
the run's details. What kfbox relies on of KFP's API is in docs/kubernetes.md, and the API
double's rules cite it (tests/engines/kubernetes/kfp_double.py)."""

from __future__ import annotations

import io
import json
import re
import time
import warnings
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from kfbox.engines.kubernetes.portforward import PortForward
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.platform import PipelineResult, PipelineRun, StepFailure, TaskRun

NAMESPACE = "kubeflow"
API_SERVICE = "svc/ml-pipeline"
API_PORT = 8888
"""KFP 2.17.0's API server Service and its REST port (manifests/kustomize/base/pipeline)."""
EXPERIMENT = "kfbox"
POLL_S = 2.0
FINAL_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")
"""backend/api/v2beta1/run.proto RuntimeState: the states a run does not leave."""
TASK_STATE = {"SUCCEEDED": "SUCCESS", "FAILED": "FAILURE"}
"""The server's words for a task's end as the seam says them (kfp.local's, TaskRun.state)."""
GENERATED_SUFFIX = re.compile(r"^-[a-z0-9]{5}$")
"""The run's Argo workflow is `<pipelineInfo.name>-xxxxx` (its generateName,
backend/src/v2/compiler/argocompiler/argo.go at 2.17.0), and so is the node that stands for it."""
OUTPUTS_NOT_READ = (
    "on Kubernetes the pipeline's outputs stay in KFP (its object store and ML Metadata): "
    "KFP 2.17.0's REST API names a task's output artifacts by id only, so kfbox cannot copy "
    "the model into the model store yet")


class KubePipelines:
    def __init__(self, tools: Tools, kubeconfig: Path | None, *, poll_s: float = POLL_S) -> None:
        self.tools = tools
        self.kubeconfig = kubeconfig
        self.poll_s = poll_s

    def run(self, run: PipelineRun) -> PipelineResult:
        started = time.monotonic()
        forward = PortForward.start(self.tools, self.kubeconfig, NAMESPACE, API_SERVICE,
                                    API_PORT)
        said = io.StringIO()  # the client prints a UI link per call: kept with the logs
        try:
            with redirect_stdout(said), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP >= 2.0"
                final = self._submit_and_watch(forward.url, run)
        finally:
            forward.stop()
        shape = shape_of(run.package)
        tasks = task_runs(final, shape)
        error = failure(final, shape) if final.get("state") != "SUCCEEDED" else ""
        return PipelineResult(
            succeeded=not error, tasks=tasks, outputs={},
            logs=said.getvalue() + json.dumps(final, indent=1, default=str),
            duration_s=time.monotonic() - started, error=error,
            task_network="the cluster's pod network", outputs_missing=OUTPUTS_NOT_READ)

    def _submit_and_watch(self, url: str, run: PipelineRun) -> dict[str, Any]:
        """Upload the file as a pipeline named after the run, run its only version, and poll
        the run until it ends (terminated when `run.timeout_s` passes first)."""
        import kfp
        from kfp_server_api import ApiException

        try:
            client = kfp.Client(host=url)
            pipeline = client.upload_pipeline(str(run.package), pipeline_name=run.name)
            versions = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions
            experiment = client.create_experiment(EXPERIMENT)
            created = client.run_pipeline(experiment.experiment_id, run.name,
                                          pipeline_id=pipeline.pipeline_id,
                                          version_id=versions[0].pipeline_version_id)
            deadline = time.monotonic() + run.timeout_s
            while True:
                current = client.get_run(created.run_id).to_dict()
                if current.get("state") in FINAL_STATES:
                    return current
                if time.monotonic() > deadline:
                    client.terminate_run(created.run_id)
                    raise StepFailure(f"pipeline {run.name} still running after "
                                      f"{run.timeout_s:g} s; KFP run {created.run_id} "
                                      "terminated")
                time.sleep(self.poll_s)
        except ApiException as exc:
            raise StepFailure(f"pipeline {run.name}: KFP refused it: {api_error(exc)}") from exc


def api_error(exc: Any) -> str:
    """One line from a KFP API error: the gateway's `message` (the server's whole chain of
    causes; its `details` say only "Internal Server Error" for many), the upload handler's
    `error_message`, a plain-text body, else the HTTP reason."""
    text = str(exc.body or "")
    try:
        body = json.loads(text)
    except ValueError:
        body = {"message": text}
    message = body.get("message") or body.get("error_message") or exc.reason or ""
    return f"HTTP {exc.status}: {' '.join(str(message).split())}"


@dataclass(frozen=True)
class Shape:
    """What kfbox reads of the compiled file to read a run's details."""

    name: str
    """pipelineInfo.name"""
    tasks: frozenset[str]
    """The tasks that run a container (components with an executor), at any depth: the tasks a
    person wrote, among the system nodes KFP's Argo compiler adds (drivers, DAGs, loop
    iterations, `executor` pods)."""

    def is_workflow(self, node: str) -> bool:
        return node.startswith(f"{self.name}-") and bool(
            GENERATED_SUFFIX.match(node[len(self.name):]))


def shape_of(package: Path) -> Shape:
    spec = next(d for d in yaml.safe_load_all(package.read_text()) if "pipelineInfo" in d)
    components = spec.get("components") or {}
    found: set[str] = set()

    def walk(dag: dict[str, Any]) -> None:
        for name, task in (dag.get("tasks") or {}).items():
            component = components.get(task["componentRef"]["name"]) or {}
            if "executorLabel" in component:
                found.add(name)
            walk(component.get("dag") or {})

    walk((spec.get("root") or {}).get("dag") or {})
    return Shape(spec["pipelineInfo"]["name"], frozenset(found))


def _time(value: Any) -> datetime | None:
    """A task's time as the client parses it; KFP's zero times (an unfinished task's end_time
    0001-01-01, an unfinished run's 1970-01-01) are None."""
    if not value:
        return None
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return None if at.year <= 1970 else at


def task_runs(run: dict[str, Any], shape: Shape) -> list[TaskRun]:
    """The run's tasks that are the pipeline's own (shape.tasks), in the order they started,
    each with its state in the seam's words (TASK_STATE) and its time. KFP 2.17.0 reports a
    task's node `T` (the DAG over its `executor` pod) by the task's name; a task Argo omitted
    after a failure has no state and never ran, so it is left out as kfp.local leaves it out."""
    details = [t for t in (run.get("run_details") or {}).get("task_details") or []
               if t.get("display_name") in shape.tasks and t.get("state")]
    details.sort(key=lambda t: str(t.get("start_time") or ""))
    runs = []
    for task in details:
        start, end = _time(task.get("start_time")), _time(task.get("end_time"))
        runs.append(TaskRun(task["display_name"], TASK_STATE.get(task["state"], task["state"]),
                            round((end - start).total_seconds(), 3) if start and end else None))
    return runs


def failure(run: dict[str, Any], shape: Shape) -> str:
    """One line: the first failed task, else the run's end. KFP 2.17.0 records no cause (a
    run's and a task's `error` are set only when the server fails to convert its own data), so
    the line says where the task's log is: the pods of the run's Argo workflow."""
    details = (run.get("run_details") or {}).get("task_details") or []
    workflow = next((t["display_name"] for t in details
                     if shape.is_workflow(str(t.get("display_name", "")))), "")
    where = (f"; its log: kubectl -n {NAMESPACE} logs -l "
             f"workflows.argoproj.io/workflow={workflow} -c main") if workflow else ""
    for task in sorted(details, key=lambda t: str(t.get("start_time") or "")):
        if task.get("state") == "FAILED" and task.get("display_name") in shape.tasks:
            return f"task {task['display_name']} failed{where}"
    return f"run ended {run.get('state')}{where}"
