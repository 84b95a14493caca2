"""Training on lite: the Kubeflow SDK's TrainerClient with its container backend, for real.

The SDK runs one container per node on a per-job network and launches torchrun in each. Its
Docker adapter lacks what a sandbox needs, so a thin subclass adds the sandbox labels (so `down`
and the tests can find every container), the model store mount, GPU device requests and limits.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from pathlib import Path
from typing import Any

import docker
import requests
from kubeflow.trainer import ContainerBackendConfig, CustomTrainer, TrainerClient
from kubeflow.trainer.backends.container.adapters.docker import DockerClientAdapter
from kubeflow.trainer.backends.container.types import TrainingRuntimeSource
from kubeflow.trainer.constants import constants

from kfbox.engines.lite.components import workload_limits
from kfbox.engines.lite.runtime_file import RUNTIME_NAME, write_runtime
from kfbox.engines.metrics import parse_metrics
from kfbox.engines.platform import (
    MODEL_DIR_ENV,
    MODEL_STORE_MOUNT,
    StepFailure,
    TrainJob,
    TrainResult,
    error_line,
    first_line,
)
from kfbox.host.config import Resources, SandboxSpec

WRITTEN_FOR_SDK = ("0.5.0",)
"""Kubeflow SDK releases whose container backend this driver was written against: it replaces
the backend's private `_adapter` with a subclass of the SDK's Docker adapter that sets the
attributes the SDK's own constructor sets. A test fails on any other installed release."""
TRAINER_LABEL = "trainer.kubeflow.org"
"""The SDK's label prefix on job containers (trainjob-name, step)."""
TORCHRUN_FAILURE = re.compile(r"torch/distributed/elastic/\S+\] failed \(exitcode: (-?\d+)\)")
"""torchrun's line announcing that a worker failed; its own traceback and report follow it."""
TIMED_OUT = "timed out"
LISTING_MISSES = 5
WAIT_SLICE_S = 1.0
"""Between status checks the driver blocks on the engine's own wait for a node to exit (no
polling lag, no API calls competing with training for the CPU); a slice this long bounds how
late an interrupt is noticed."""


def launch(command: list[str]) -> None:
    """Runs inside each node under torchrun (the SDK ships this function's source): replace
    the launcher process with the image's own training entry point, keeping torchrun's env."""
    import os

    os.execvp(command[0], command)


class SandboxDockerAdapter(DockerClientAdapter):
    """The SDK's Docker adapter plus sandbox labels, the model store, GPUs and limits."""

    def __init__(
        self,
        client: docker.DockerClient,
        labels: dict[str, str],
        store_volume: str,
        gpus: int,
        resources: Resources,
        *,
        workdir_bind: bool = True,
    ) -> None:
        # The engine's own client, rather than the base class's second connection: the same
        # two attributes the SDK's constructor sets (WRITTEN_FOR_SDK guards that).
        self.client = client
        self._runtime_type = "docker"
        self.sandbox_labels = labels
        self.store_volume = store_volume
        self.gpus = gpus
        self.resources = resources
        self.workdir_bind = workdir_bind
        """False in a rootless sandbox: the SDK binds its per-job workdir from this process's
        HOME (root's, 0700), which the engine's user cannot reach; kfbox's jobs never use it
        (the SDK sends the training function inline), so the job runs without that bind."""

    def create_network(self, name: str, labels: dict[str, str]) -> str:
        return super().create_network(name, {**labels, **self.sandbox_labels})

    def create_and_start_container(
        self, image, command, name, network_id, environment, labels, volumes, working_dir
    ) -> str:
        container = self.client.containers.run(
            image=image,
            command=tuple(command),
            name=name,
            detach=True,
            working_dir=working_dir,
            network=network_id,
            environment=environment,
            labels={**labels, **self.sandbox_labels},
            volumes={**(volumes if self.workdir_bind else {}),
                     self.store_volume: {"bind": MODEL_STORE_MOUNT, "mode": "rw"}},
            auto_remove=False,
            **workload_limits(self.resources, self.gpus),
        )
        return container.id


class LiteTraining:
    def __init__(
        self,
        client: docker.DockerClient,
        spec: SandboxSpec,
        labels: dict[str, str],
        store_volume: str,
        run_dir: Path,
        stopping: threading.Event | None = None,
        *,
        workdir_bind: bool = True,
    ) -> None:
        self.docker = client
        self.workdir_bind = workdir_bind
        self.spec = spec
        self.labels = labels
        self.store_volume = store_volume
        self.run_dir = run_dir
        self.stopping = stopping or threading.Event()
        """Set when the run is being stopped (Ctrl-C): jobs still running end at once."""

    def client(self, image: str, gpus: int) -> TrainerClient:
        runtime_dir = self.run_dir / "runtimes" / image.rsplit("@", 1)[-1].replace(":", "-")
        if not (runtime_dir / f"{RUNTIME_NAME}.yaml").exists():
            write_runtime(runtime_dir, image)
        config = ContainerBackendConfig(
            container_runtime="docker",
            pull_policy="Always",  # the image comes from the sandbox registry, by digest
            runtime_source=TrainingRuntimeSource(sources=[f"file://{runtime_dir}"]),
        )
        client = TrainerClient(backend_config=config)
        client.backend._adapter = SandboxDockerAdapter(
            self.docker, self.labels, self.store_volume, gpus, self.spec.resources,
            workdir_bind=self.workdir_bind,
        )
        return client

    def run(self, job: TrainJob) -> TrainResult:
        started, started_at = time.monotonic(), time.time()
        client = self.client(job.image, job.gpus)
        trainer = CustomTrainer(
            func=launch,
            func_args={"command": job.argv},
            image=job.image,
            num_nodes=job.num_nodes,
            resources_per_node={"gpu": job.gpus} if job.gpus else None,
            env={MODEL_DIR_ENV: f"{MODEL_STORE_MOUNT}/{job.model_key}", "PYTHONUNBUFFERED": "1"},
        )
        try:
            name = client.train(
                runtime=client.get_runtime(RUNTIME_NAME),
                trainer=trainer,
                options=[_named(job.name)],
            )
        except Exception as exc:  # the SDK wraps pull and create failures in RuntimeError
            raise StepFailure(
                f"training job {job.name} could not start: {first_line(exc)}"
            ) from exc
        try:
            final = _wait(client, self.docker, name, job.timeout_s, self.stopping)
            logs = node_logs(client.backend._adapter, name)
        finally:  # every outcome, an interrupt included, removes the job's containers
            with contextlib.suppress(ValueError):  # the SDK's "no such job": nothing to delete
                client.delete_job(name)
        metrics = parse_metrics(logs.get("node-0", ""))
        all_logs = "\n".join(f"===== {step} =====\n{text}" for step, text in logs.items())
        if final == TIMED_OUT:
            raise StepFailure(
                f"training job {job.name} timed out after {job.timeout_s:.0f}s; its last "
                f"output: {_last_words(logs)}", logs=all_logs)
        if final != constants.TRAINJOB_COMPLETE:
            raise StepFailure(
                f"training job {job.name} {final.lower()}: {_cause(logs)}", logs=all_logs
            )
        return TrainResult(
            job.name, True, metrics, job.model_key, all_logs, time.monotonic() - started,
            started_at,
        )


def _named(name: str):
    """A TrainerClient option that names the job (the SDK reads metadata.name from the spec)."""

    def apply(job_spec: dict, trainer: Any, backend: Any) -> None:
        job_spec.setdefault("metadata", {})["name"] = name

    return apply


def _wait(
    client: TrainerClient,
    engine: docker.DockerClient,
    name: str,
    timeout_s: float,
    stopping: threading.Event,
) -> str:
    """Wait until the job is Complete or Failed, its timeout, or the run stopping. The SDK
    decides the status; between its checks the engine says when a node exits. The SDK's
    Docker adapter reports a failed container listing (an engine busy past its API timeout)
    as "no such job", so a few misses in a row are tolerated before the job counts as gone."""
    deadline = time.monotonic() + timeout_s
    misses = 0
    while time.monotonic() < deadline:
        if stopping.is_set():
            return "stopped (the run was interrupted)"
        try:
            status = client.get_job(name).status
            misses = 0
        except ValueError:
            misses += 1
            if misses >= LISTING_MISSES:
                return "vanished (its containers are gone)"
            time.sleep(2)
            continue
        if status in (constants.TRAINJOB_COMPLETE, constants.TRAINJOB_FAILED):
            return status
        _until_a_node_exits(engine, name, min(WAIT_SLICE_S, max(deadline - time.monotonic(), 0.1)))
    return TIMED_OUT


def _until_a_node_exits(engine: docker.DockerClient, name: str, slice_s: float) -> None:
    """Block until one of the job's running containers exits, or `slice_s` passes."""
    running = engine.containers.list(
        ignore_removed=True,   # sparse: only ids are needed, no inspect per node
        filters={"label": f"{TRAINER_LABEL}/trainjob-name={name}", "status": "running"},
        sparse=True,
    )
    if not running:  # between states (created, restarting): look again shortly
        time.sleep(min(slice_s, 0.1))
        return
    with contextlib.suppress(requests.exceptions.RequestException, docker.errors.NotFound):
        # The engine answers when the container stops; the HTTP read timeout ends the slice.
        running[0].wait(timeout=slice_s)


def _last_words(logs: dict[str, str]) -> str:
    """The last line the first node that printed anything printed (a hung job's last sign of
    life), or that it said nothing at all."""
    for text in logs.values():
        said = [line.strip() for line in text.splitlines() if line.strip()]
        if said:
            return said[-1]
    return "nothing"


def node_logs(adapter: DockerClientAdapter, name: str) -> dict[str, str]:
    """Each node's own output, by its step label. (The SDK's get_job_logs(step="node-0")
    returns every node's output, which would mix rank 1's lines into rank 0's metrics.)"""
    containers = adapter.list_containers(
        filters={"label": [f"{TRAINER_LABEL}/trainjob-name={name}"]}
    )
    return {
        c["labels"].get(f"{TRAINER_LABEL}/step", c["name"]): "".join(
            adapter.container_logs(c["id"], follow=False)
        )
        for c in sorted(containers, key=lambda c: c["name"])
    }


def _cause(logs: dict[str, str]) -> str:
    """The cause from the first node whose own output names an error, else from node 0."""
    own = [_workload_output(text) for text in logs.values()] or [("", None)]
    failed = [(text, code) for text, code in own if code is not None or "error" in text.lower()]
    text, exit_code = (failed or own)[0]
    return _with_exit_code(error_line(text), exit_code)


def _workload_output(text: str) -> tuple[str, str | None]:
    """A node's output up to torchrun's failure report, and the worker's exit code from it.
    The report ends with lines like 'traceback : To enable traceback see: ...', which would
    otherwise pass for the cause and hide the script's own last words."""
    found = TORCHRUN_FAILURE.search(text)
    if found is None:
        return text, None
    return text[: text.rfind("\n", 0, found.start()) + 1], found.group(1)


def _with_exit_code(line: str, exit_code: str | None) -> str:
    return f"{line} (exit code {exit_code})" if exit_code is not None else line
