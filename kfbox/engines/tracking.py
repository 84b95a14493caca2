"""The tracking seam on an MLflow tracking server, through MLflow's own client: runs recorded and
read back, a run's model made a registered version, a version found again; and the server's
command line. Shared by the engines: lite runs it as its `tracking` component, Kubernetes as a
Deployment in each run's namespace (its model versions then go to Kubeflow's Model Registry)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from kfbox.engines.platform import (
    MODEL_STORE_MOUNT,
    ModelVersion,
    RecordedRun,
    StepFailure,
    TrackedRun,
    first_line,
)

TRACKING_USER = "kfbox"
"""The tracking server's one user (MLflow's admin); its password is a per-sandbox (lite) or
per-run (Kubernetes) secret."""
TRACKING_PORT = 5000
"""Where the tracking server listens in its network (lite: http://tracking:5000)."""
TRACKING_ARTIFACTS = "tracking"
"""The model store folder MLflow keeps run artifacts and model versions in: a registered
version's files are model store keys under it, which every workload can mount."""
TRACKING_DATA = "/var/lib/mlflow"
"""The server's own folder in its container: the sqlite file of runs and the registry."""
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


def server_command(allowed_hosts: list[str]) -> list[str]:
    """MLflow's tracking server as kfbox runs it on every engine: one worker, runs in sqlite
    under TRACKING_DATA, artifacts in the model store, every request (the UI's too) behind the
    basic-auth app (the image's mlflow-auth.ini and the login in the environment:
    server_environment). MLflow's DNS-rebinding guard admits only `allowed_hosts` as a
    request's Host header (mlflow/server/security_utils.py at 3.17.2). The image's
    kfbox-tracking-server is `mlflow server` with the web server exec'd in the CLI's place."""
    return ["kfbox-tracking-server", "--app-name", "basic-auth", "--workers", "1",
            "--host", "0.0.0.0", "--port", str(TRACKING_PORT),
            "--backend-store-uri", f"sqlite:///{TRACKING_DATA}/mlflow.db",
            "--artifacts-destination", f"{MODEL_STORE_MOUNT}/{TRACKING_ARTIFACTS}",
            "--allowed-hosts", ",".join(allowed_hosts)]


def server_environment(password: str, csrf_key: str) -> dict[str, str]:
    """The server's admin login and its CSRF key (MLflow's basic-auth app reads them from
    these variables at start)."""
    return {"MLFLOW_AUTH_ADMIN_USERNAME": TRACKING_USER,
            "MLFLOW_AUTH_ADMIN_PASSWORD": password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": csrf_key}


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

    def store_model(self, run_id: str, files: Path) -> str:
        """Log `files` as the run's model; the model store key the server put them at."""
        self._call("store the model's files", self.client.log_artifacts, run_id, str(files),
                   "model")
        run = self._call("read a run", self.client.get_run, run_id)
        return self.store_key(f"{run.info.artifact_uri}/model")

    def store_key(self, uri: str) -> str:
        """The model store key of an artifact this server keeps (`--artifacts-destination`);
        one kept anywhere else is refused: a workload could not mount it."""
        if not uri.startswith(ARTIFACTS_SCHEME):
            raise StepFailure(f"the model at {uri} is outside the model store; register it "
                              "from a run's files")
        return f"{self.store_folder}/{uri.removeprefix(ARTIFACTS_SCHEME).strip('/')}"

    def register(self, name: str, run_id: str, files: Path, *, tags: dict[str, str],
                 alias: str) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        self.store_model(run_id, files)
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
        key = self.store_key(found.source)
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
