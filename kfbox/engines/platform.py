"""The platform seam: what a journey calls. Each engine implements it; a journey never knows which.

Requests and results are plain dataclasses so both engines (and the report) share them.
Model files live in the sandbox's model store; workloads see it at MODEL_STORE_MOUNT and
address a model by a store key (a relative path), never by an engine-specific URI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

MODEL_STORE_MOUNT = "/mnt/store"
"""Where every workload (training node, trial, model server) sees the model store."""

MODEL_DIR_ENV = "KFBOX_MODEL_DIR"
"""Environment variable naming the directory a workload saves to or loads its model from."""

MODEL_VERSION_ENV = "KFBOX_MODEL_VERSION"
"""Environment variable naming the registered model version a model server serves; the server
prints it back as a `model_version=N` line."""


class StepFailure(Exception):
    """A platform operation failed for a reason the user must see in one line (the real cause)."""

    def __init__(self, message: str, *, logs: str = "") -> None:
        super().__init__(message)
        self.logs = logs


def error_line(logs: str) -> str:
    """The line of a workload's output that names the real cause: the last one mentioning an
    error (a traceback's final line), else the last line."""
    lines = [ln.strip() for ln in logs.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() or "exception" in ln.lower()]
    return (errors or lines or ["no output"])[-1]


ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def plain(text: str) -> str:
    """Text without terminal colour codes (tracebacks and build logs carry them)."""
    return ANSI_COLOUR.sub("", text)


def first_line(exc: BaseException) -> str:
    """An exception as one line for a report: its message's first line, or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


# ---- notebooks -------------------------------------------------------------------------------


@dataclass
class NotebookResult:
    executed: Path
    """The executed notebook, outputs included, saved on the host."""
    cells_run: int
    duration_s: float


class Notebooks(Protocol):
    def execute(self, notebook: Path, remote_dir: str, *, timeout_s: float) -> NotebookResult:
        """Upload `notebook` into `remote_dir` of the notebook server and run every code cell
        through a kernel, as a remote client would; the first cell error raises StepFailure."""
        ...

    def fetch(self, remote_dir: str, dest: Path) -> list[Path]:
        """Download the files the notebook wrote into `remote_dir` (not recursive)."""
        ...


# ---- images ----------------------------------------------------------------------------------


@dataclass
class BuiltImage:
    reference: str
    """Pullable reference in the sandbox registry, pinned by digest (repo@sha256:...)."""
    digest: str
    duration_s: float


class Images(Protocol):
    def build(self, context: Path, repository: str, *, build_args: dict[str, str]) -> BuiltImage:
        """Build `context` (its Dockerfile) without pulling, push it to the sandbox registry."""
        ...


# ---- training and tuning ---------------------------------------------------------------------


@dataclass
class TrainJob:
    name: str
    image: str
    command: list[str]
    """The training entry point inside the image, e.g. ["python", "/app/train.py"]."""
    args: dict[str, str] = field(default_factory=dict)
    """Hyperparameters, passed as --key=value."""
    num_nodes: int = 1
    gpus: int = 0
    """GPUs per node; 0 runs on CPU."""
    model_key: str = ""
    """Store key the job saves its model under (KFBOX_MODEL_DIR points there)."""
    timeout_s: float = 600

    @property
    def argv(self) -> list[str]:
        """The command line each node runs: the entry point, then the args as --key=value."""
        return [*self.command, *(f"--{k}={v}" for k, v in self.args.items())]


@dataclass
class TrainResult:
    name: str
    succeeded: bool
    metrics: dict[str, float]
    """Last value of each `name=value` line the job printed (Katib's StdOut collector format)."""
    model_key: str
    logs: str
    duration_s: float
    started_at: float = 0.0
    """When it started, in seconds since the epoch (0: unknown); what a tracked run starts at."""


class Training(Protocol):
    def run(self, job: TrainJob) -> TrainResult:
        """Run the job to completion; a failed job raises StepFailure with the cause and logs."""
        ...


@dataclass
class Parameter:
    name: str
    type: Literal["double", "int", "categorical"]
    min: float | None = None
    max: float | None = None
    values: list[str] = field(default_factory=list)
    log: bool = False


@dataclass
class Experiment:
    name: str
    trial: TrainJob
    """Template for each trial; its args are merged with the trial's parameters."""
    parameters: list[Parameter]
    objective: str
    goal: Literal["maximize", "minimize"] = "maximize"
    algorithm: Literal["random", "tpe"] = "tpe"
    max_trials: int = 6
    parallel_trials: int = 2
    seed: int = 0


@dataclass
class Trial:
    name: str
    parameters: dict[str, str]
    metrics: dict[str, float]
    succeeded: bool
    model_key: str
    duration_s: float
    logs: str = ""
    """The trial's own output (its training job's), kept with the run's logs."""
    started_at: float = 0.0
    """When its training job started, in seconds since the epoch (0: unknown)."""


@dataclass
class TuneResult:
    best: Trial
    trials: list[Trial]
    duration_s: float


class Tuning(Protocol):
    def run(self, experiment: Experiment) -> TuneResult:
        """Run the experiment's trials (in parallel up to parallel_trials), return the best."""
        ...


# ---- serving ---------------------------------------------------------------------------------


@dataclass
class ServeRequest:
    name: str
    image: str
    command: list[str]
    """The model server entry point inside the image (a KServe ModelServer)."""
    model_name: str
    model_key: str
    gpus: int = 0
    timeout_s: float = 180
    model_version: str = ""
    """The registered version it serves (MODEL_VERSION_ENV tells the server); empty: none."""


@dataclass
class Endpoint:
    name: str
    url: str
    """Base URL reachable from the host, e.g. http://127.0.0.1:40123."""
    model_name: str


class Serving(Protocol):
    def deploy(self, request: ServeRequest) -> Endpoint:
        """Start the model server and wait until /v2/health/ready answers."""
        ...

    def logs(self, name: str) -> str:
        """The model server's output so far (empty when it is gone)."""
        ...

    def delete(self, name: str) -> None: ...


# ---- pipelines -------------------------------------------------------------------------------


@dataclass
class PipelineRun:
    name: str
    package: Path
    """The compiled pipeline (KFP's pipeline spec, YAML): every argument has its default."""
    store_key: str
    """Where in the model store the run's artifacts land (every task's outputs)."""
    timeout_s: float = 1800


@dataclass
class TaskRun:
    name: str
    state: str
    """KFP's word for how it ended: SUCCESS or FAILURE (RUNNING when the run stopped first)."""
    duration_s: float | None = None


@dataclass
class PipelineResult:
    succeeded: bool
    tasks: list[TaskRun]
    outputs: dict[str, str]
    """The pipeline's outputs: an artifact by its model store key, a parameter as text."""
    logs: str
    duration_s: float
    error: str = ""
    """One line: why the run failed (the failed task and its cause), empty when it succeeded."""
    task_outputs: dict[str, dict] = field(default_factory=dict)
    """Each task's output parameters as its executor wrote them, by the task's place in the run
    (`train`, `for-loop-1-iteration-0/trial`, ...)."""
    task_network: str = "none"
    """What network a task had: `none` (lite), else the platform's word for it."""
    outputs_missing: str = ""
    """Why `outputs` is empty though the run may have succeeded (the platform cannot read them
    back), said where the step looks for the model; empty when outputs are read."""


class Pipelines(Protocol):
    def run(self, run: PipelineRun) -> PipelineResult:
        """Run the compiled pipeline to its end on the sandbox; its artifacts land in the model
        store under run.store_key. A run that cannot start raises StepFailure."""
        ...


# ---- tracking --------------------------------------------------------------------------------


@dataclass
class TrackedRun:
    """A training job or trial as the tracking server records it."""

    experiment: str
    name: str
    parameters: dict[str, str]
    series: dict[str, list[float]]
    """Every value of each `name=value` metric the job printed, in order (its steps)."""
    tags: dict[str, str] = field(default_factory=dict)
    """What produced it: the image digest, the node count, the journey."""
    started_at: float = 0.0
    """Seconds since the epoch (0: now)."""
    duration_s: float = 0.0
    succeeded: bool = True
    parent: str = ""
    """The run id of the study a trial belongs to; empty for a run of its own."""


@dataclass
class RecordedRun:
    """A run as the tracking server gives it back."""

    id: str
    name: str
    parameters: dict[str, str]
    metrics: dict[str, float]
    """Each metric's last value."""
    steps: dict[str, int]
    """How many values each metric has (its history's length)."""
    tags: dict[str, str]
    status: str
    url: str
    """Where a person opens it in the tracking server's UI."""


@dataclass
class ModelVersion:
    name: str
    version: str
    run_id: str
    model_key: str
    """Where its files are in the model store."""
    tags: dict[str, str]
    aliases: list[str]


class Tracking(Protocol):
    url: str
    """The tracking server's UI and API, as this host reaches it."""

    def record(self, run: TrackedRun) -> str:
        """Record a finished run with its parameters, metric series and tags; its id. A server
        that does not answer raises StepFailure naming it."""
        ...

    def read(self, run_id: str) -> RecordedRun:
        """The run as the server stores it."""
        ...

    def register(self, name: str, run_id: str, files: Path, *, tags: dict[str, str],
                 alias: str) -> ModelVersion:
        """Log `files` as the run's model, make them a new version of registered model `name`
        with `tags`, and point `alias` at it."""
        ...

    def version(self, name: str, version: str) -> ModelVersion:
        """A registered version, as the registry has it now."""
        ...


# ---- artifacts -------------------------------------------------------------------------------


class Artifacts(Protocol):
    def list(self, prefix: str = "") -> list[str]:
        """Store keys (files) under `prefix`."""
        ...

    def fetch(self, key: str, dest: Path) -> Path:
        """Copy the file or folder at `key` out of the store to `dest`."""
        ...


@runtime_checkable
class Platform(Protocol):
    notebooks: Notebooks
    images: Images
    training: Training
    tuning: Tuning
    serving: Serving
    artifacts: Artifacts
    pipelines: Pipelines
    tracking: Tracking
    runtime_image: str
    """The ML runtime image a scenario's Dockerfile builds FROM (its BASE_IMAGE build arg)."""

    def gpu_count(self) -> int:
        """GPUs a workload can request on this platform (0 when none)."""
        ...

    def collect_diagnostics(self, dest: Path) -> None:
        """Write component and workload logs, inspect output, events, into `dest`."""
        ...

    def close(self, *, keep: bool = False) -> None:
        """Remove everything this platform object started for the run (never user data);
        with `keep`, leave the run's workloads for inspection and stop only local helpers."""
        ...
