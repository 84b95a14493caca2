"""The tracking seam on an MLflow tracking server, through MLflow's own client: runs recorded and
read back, a run's model made a registered version, a version found again. Shared by the
engines that run one (lite: the `tracking` component)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from kfbox.engines.platform import (
    ModelVersion,
    RecordedRun,
    StepFailure,
    TrackedRun,
    first_line,
)

ARTIFACTS_SCHEME = "mlflow-artifacts:/"
"""How MLflow names an artifact its server keeps (`--artifacts-destination`): a run's model
files, so a registered version's source."""
CLIENT_SETTINGS = {
    # MLflow's client retries a refused connection seven times with a growing backoff
    # (mlflow/environment_variables.py at 3.17.2): minutes before a stopped server is named.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    # The sandbox makes no request a user did not ask for.
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


class MlflowTracking:
    def __init__(self, url: str, user: str, password: str, store_folder: str) -> None:
        self.url = url
        self._user = user
        self._password = password
        self.store_folder = store_folder
        """The model store folder the server keeps artifacts in (`--artifacts-destination`)."""
        self._client: Any = None
        self._experiments: dict[str, str] = {}
        self._lock = threading.RLock()
        # MLflow's client takes seconds of CPU to import: a journey's earlier steps (the
        # notebook, the build) mostly wait on containers, so the import happens meanwhile.
        self._imported = threading.Thread(target=_import_client, daemon=True)
        self._imported.start()

    @property
    def client(self) -> Any:
        with self._lock:
            return self._client or self._connect()

    def _connect(self) -> Any:
        # MLflow's client reads its credentials from the environment only. This process is
        # kfbox's own; what it starts is kfbox's too (the pipeline runner) or a container,
        # which gets none of its environment.
        os.environ["MLFLOW_TRACKING_USERNAME"] = self._user
        os.environ["MLFLOW_TRACKING_PASSWORD"] = self._password
        for key, value in CLIENT_SETTINGS.items():
            os.environ.setdefault(key, value)
        self._imported.join()
        from mlflow import MlflowClient

        self._client = MlflowClient(tracking_uri=self.url, registry_uri=self.url)
        return self._client

    def _call(self, what: str, action, *args, **kwargs):
        """One client call; a server that does not answer or refuses is one line naming it."""
        try:
            return action(*args, **kwargs)
        except Exception as exc:  # MlflowException, or the connection error under it
            raise self._failure(what, exc) from exc

    def _failure(self, what: str, exc: Exception) -> StepFailure:
        return StepFailure(f"the tracking server at {self.url} could not {what}: "
                           f"{first_line(exc)}; run `kfbox up` to start it again if it stopped")

    def _experiment(self, name: str) -> str:
        """The experiment's id, made when missing: once, though runs are recorded several at a
        time, and found again when another client (a notebook) made it first."""
        from mlflow.exceptions import MlflowException

        with self._lock:
            if name not in self._experiments:
                found = self._call("find an experiment", self.client.get_experiment_by_name,
                                   name)
                if found is None:
                    try:
                        self._experiments[name] = self.client.create_experiment(name)
                    except MlflowException as exc:
                        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                            raise self._failure("create an experiment", exc) from exc
                        found = self._call("find an experiment",
                                           self.client.get_experiment_by_name, name)
                if found is not None:
                    self._experiments[name] = found.experiment_id
            return self._experiments[name]

    def record(self, run: TrackedRun) -> str:
        from mlflow.entities import Metric, Param, RunTag

        started = int((run.started_at or time.time()) * 1000)
        tags = {**run.tags, **({"mlflow.parentRunId": run.parent} if run.parent else {})}
        created = self._call("record a run", self.client.create_run,
                             self._experiment(run.experiment), start_time=started, tags=tags,
                             run_name=run.name)
        run_id = created.info.run_id
        metrics = [Metric(name, value, started, step)
                   for name, values in run.series.items() for step, value in enumerate(values)]
        self._call("record a run's metrics", self.client.log_batch, run_id, metrics=metrics,
                   params=[Param(k, str(v)) for k, v in run.parameters.items()],
                   tags=[RunTag("kfbox.duration_s", f"{run.duration_s:.3f}")])
        self._call("finish a run", self.client.set_terminated, run_id,
                   "FINISHED" if run.succeeded else "FAILED",
                   end_time=started + int(run.duration_s * 1000))
        return run_id

    def read(self, run_id: str) -> RecordedRun:
        run = self._call("read a run", self.client.get_run, run_id)
        steps = {name: len(self._call("read a metric's history",
                                      self.client.get_metric_history, run_id, name))
                 for name in run.data.metrics}
        return RecordedRun(run_id, run.info.run_name, dict(run.data.params),
                           dict(run.data.metrics), steps, dict(run.data.tags), run.info.status,
                           f"{self.url}/#/experiments/{run.info.experiment_id}/runs/{run_id}")

    def register(self, name: str, run_id: str, files: Path, *, tags: dict[str, str],
                 alias: str) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        self._call("store the model's files", self.client.log_artifacts, run_id, str(files),
                   "model")
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise self._failure("register a model", exc) from exc
        run = self._call("read a run", self.client.get_run, run_id)
        created = self._call("register a model version", self.client.create_model_version,
                             name, f"{run.info.artifact_uri}/model", run_id, tags=tags)
        self._call("set an alias", self.client.set_registered_model_alias, name, alias,
                   created.version)
        return self.version(name, str(created.version))

    def version(self, name: str, version: str) -> ModelVersion:
        found = self._call("find a model version", self.client.get_model_version, name, version)
        if not found.source.startswith(ARTIFACTS_SCHEME):
            raise StepFailure(f"model {name} version {version} is at {found.source}, outside "
                              "the model store; register it from a run's files")
        key = f"{self.store_folder}/{found.source.removeprefix(ARTIFACTS_SCHEME).strip('/')}"
        return ModelVersion(name, str(found.version), found.run_id or "", key,
                            dict(found.tags or {}), list(found.aliases or []))



def _import_client() -> None:
    import mlflow.entities  # noqa: F401  (the client's entities load with it)
    from mlflow import MlflowClient  # noqa: F401


class NoTracking:
    """The tracking seam of a sandbox that runs no tracking server: every call fails the step
    saying why, so nothing is recorded as tracked that was not."""

    url = ""

    def __init__(self, why: str) -> None:
        self.why = why

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise StepFailure(self.why)

    record = read = register = version = _refuse
