"""The tracking seam on Kubernetes: each run's MLflow tracking server (lite's image and command, a
Deployment in the run's namespace mounting its model store) records runs, and Kubeflow's Model
Registry (the lock's `model-registry`) keeps model versions, through the Kubeflow SDK's
ModelRegistryClient; each reached from the host through a port-forward."""

from __future__ import annotations

import logging
import secrets
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfbox.engines.kubernetes.adjust import MODEL_REGISTRY_NAMESPACE
from kfbox.engines.kubernetes.kubeapi import KubeApi
from kfbox.engines.kubernetes.portforward import PortForward
from kfbox.engines.kubernetes.readiness import deployment_available
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.kubernetes.workspace import STORE_CLAIM
from kfbox.engines.platform import (
    MODEL_STORE_MOUNT,
    ModelVersion,
    RecordedRun,
    StepFailure,
    TrackedRun,
    first_line,
)
from kfbox.engines.tracking import (
    TRACKING_ARTIFACTS,
    TRACKING_DATA,
    TRACKING_PORT,
    TRACKING_USER,
    MlflowTracking,
    server_command,
    server_environment,
)

SERVER = "kfbox-tracking"
"""The run's tracking server: its Deployment, Service and pod label."""
LOGIN_SECRET = "kfbox-tracking-login"
REGISTRY_SERVICE = "svc/model-registry-service"
REGISTRY_PORT = 8080
"""Model Registry v0.3.8's REST Service and port (manifests/kustomize/base/
model-registry-service.yaml), in MODEL_REGISTRY_NAMESPACE."""
PVC_SCHEME = f"pvc://{STORE_CLAIM}/"
"""A registered version's URI: KServe's storage URI of a file on a claim (kserve v0.20.0
pkg/constants/constants.go PvcURIPrefix, pvc://<claim>/<path>), the run's model store."""
RUN_PROPERTY = "kfbox.mlflow_run_id"
"""The version's custom property naming the tracking server's run that made it."""
ALIAS_PROPERTY = "kfbox.alias."
"""Model Registry v0.3.8 has no aliases: an alias is the registered model's custom property
`kfbox.alias.<alias>` naming the version, moved as MLflow moves an alias."""
READY_TIMEOUT_S = 300.0


def server_objects(namespace: str, image: str, password: str, csrf_key: str) -> list[dict]:
    """The run's tracking server: its login as a Secret, a one-replica Deployment of kfbox's
    tracking image (pinned by digest) with the run's model store mounted where lite mounts it,
    and a Service the host port-forwards to and the run's pods reach by name."""
    labels = {"app.kubernetes.io/name": SERVER, "app.kubernetes.io/part-of": "kfbox"}
    hosts = ["localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*", SERVER,
             f"{SERVER}:{TRACKING_PORT}", f"{SERVER}.{namespace}.svc:{TRACKING_PORT}"]
    container = {
        "name": "tracking",
        "image": image,
        "command": server_command(hosts),
        "envFrom": [{"secretRef": {"name": LOGIN_SECRET}}],
        "ports": [{"name": "http", "containerPort": TRACKING_PORT}],
        "readinessProbe": {"tcpSocket": {"port": TRACKING_PORT}, "periodSeconds": 2},
        "volumeMounts": [{"name": "store", "mountPath": MODEL_STORE_MOUNT},
                         {"name": "data", "mountPath": TRACKING_DATA}],
        # The image runs as its root user, with no capabilities: it writes only the run's
        # store (whose root is root's) and its own emptyDir.
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
    }
    return [
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": LOGIN_SECRET, "namespace": namespace, "labels": labels},
         "type": "Opaque", "stringData": server_environment(password, csrf_key)},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": SERVER, "namespace": namespace, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [container],
                                        "automountServiceAccountToken": False,
                                        "volumes": [
                                            {"name": "store", "persistentVolumeClaim":
                                             {"claimName": STORE_CLAIM}},
                                            {"name": "data", "emptyDir": {}}]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": SERVER, "namespace": namespace, "labels": labels},
         "spec": {"selector": labels,
                  "ports": [{"name": "http", "port": TRACKING_PORT,
                             "targetPort": TRACKING_PORT}]}},
    ]


class KubeTracking:
    """Started on first use (a journey without the track step pays nothing): the server's
    Deployment applied and waited for, then a port-forward to it and one to Model Registry."""

    def __init__(self, kube: KubeApi, namespace: str, tools: Tools, kubeconfig: Path | None,
                 image: Callable[[], str], *,
                 runs: Callable[[str, str, str, str], MlflowTracking] = MlflowTracking,
                 ready_timeout_s: float = READY_TIMEOUT_S, poll_s: float = 2.0) -> None:
        self.kube = kube
        self.namespace = namespace
        self.tools = tools
        self.kubeconfig = kubeconfig
        self._image = image
        self._make_runs = runs
        self.ready_timeout_s = ready_timeout_s
        self.poll_s = poll_s
        self._runs: MlflowTracking | None = None
        self._registry: Any = None
        self._forwards: list[PortForward] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self._runs.url if self._runs else ""

    # ---- runs: the run's MLflow server ----------------------------------------------------

    @property
    def runs(self) -> MlflowTracking:
        with self._lock:
            if self._runs is None:
                self._runs = self._start_server()
            return self._runs

    def _start_server(self) -> MlflowTracking:
        try:
            image = self._image()
        except Exception as exc:  # a build or push that failed, as one line
            raise StepFailure(f"the tracking server's image: {first_line(exc)}") from exc
        password = secrets.token_urlsafe(24)
        for obj in server_objects(self.namespace, image, password, secrets.token_hex(32)):
            self.kube.apply(obj)
        ref = f"{self.namespace}/{SERVER}"
        deadline = time.monotonic() + self.ready_timeout_s
        while not deployment_available(self.kube, ref):
            if time.monotonic() > deadline:
                raise StepFailure(f"the tracking server {ref} is not available after "
                                  f"{self.ready_timeout_s:g} s; see its pod's events in the "
                                  "diagnostics")
            time.sleep(self.poll_s)
        forward = self._forward(self.namespace, f"svc/{SERVER}", TRACKING_PORT)
        return self._make_runs(forward.url, TRACKING_USER, password, TRACKING_ARTIFACTS)

    def _forward(self, namespace: str, target: str, port: int) -> PortForward:
        forward = PortForward.start(self.tools, self.kubeconfig, namespace, target, port)
        self._forwards.append(forward)
        return forward

    def record(self, run: TrackedRun) -> str:
        return self.runs.record(run)

    def read(self, run_id: str) -> RecordedRun:
        return self.runs.read(run_id)

    # ---- model versions: Kubeflow's Model Registry ------------------------------------------

    @property
    def registry(self) -> Any:
        """The Kubeflow SDK's ModelRegistryClient on a port-forward to Model Registry."""
        with self._lock:
            if self._registry is None:
                from kubeflow.hub import ModelRegistryClient

                forward = self._forward(MODEL_REGISTRY_NAMESPACE, REGISTRY_SERVICE,
                                        REGISTRY_PORT)
                # The client warns, as a log record and a Python warning, that plain http on a
                # port not ending in 80 and no user token may be a mistake: both are the
                # port-forward's, by design.
                logging.getLogger("model-registry").setLevel(logging.ERROR)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    # The port given apart: the SDK would otherwise take http's as 8080. The
                    # client asks the server on construction.
                    self._registry = self._call("be reached", ModelRegistryClient,
                                                "http://127.0.0.1", forward.port,
                                                author=TRACKING_USER)
            return self._registry

    def _call(self, what: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        except StepFailure:
            raise
        except Exception as exc:  # StoreError, ValueError, or the connection error under it
            raise StepFailure(
                f"Kubeflow Model Registry ({MODEL_REGISTRY_NAMESPACE}/"
                f"{REGISTRY_SERVICE.removeprefix('svc/')}) "
                f"could not {what}: {first_line(exc)}; run `kfbox up` to install it again if "
                "it is missing") from exc

    def _model(self, name: str) -> Any | None:
        try:
            found = self.registry.get_model(name)
        except ValueError:  # the SDK's "not found"
            return None
        # v0.3.8 finds a model by name with SQL LIKE (internal/core/registered_model.go), so
        # `_` and `%` match any character: another model's versions must not be taken.
        if found.name != name:
            raise StepFailure(f"Kubeflow Model Registry found model {found.name} for {name} "
                              "(its name lookup takes _ and % as wildcards); give "
                              "serve.model_name without them")
        return found

    def register(self, name: str, run_id: str, files: Path, *, tags: dict[str, str],
                 alias: str) -> ModelVersion:
        """The files go where the run's tracking server keeps its run's model (the run's
        store); the version points at them with KServe's pvc:// URI."""
        key = self.runs.store_model(run_id, files)
        model = self._call("find a registered model", self._model, name)
        count = 0 if model is None else sum(
            1 for _ in self._call("list a model's versions", self.registry.list_model_versions,
                                  name))
        version = str(count + 1)
        # The SDK answers with the registered model (found or made): no second lookup.
        model = self._call("register a model version", self.registry.register_model, name,
                           PVC_SCHEME + key, version=version,
                           version_description=f"the model of run {run_id} ({self.url})",
                           metadata={**tags, RUN_PROPERTY: run_id,
                                     "kfbox.namespace": self.namespace})
        model.custom_properties = {**(model.custom_properties or {}),
                                   ALIAS_PROPERTY + alias: version}
        self._call("set an alias", self.registry.update_model, model)
        return self.version(name, version)

    def version(self, name: str, version: str) -> ModelVersion:
        found = self._call("find a model version", self.registry.get_model_version, name,
                           version)
        artifact = self._call("find a model version's files",
                              self.registry.get_model_artifact, name, version)
        model = self._call("find a registered model", self._model, name)
        uri = artifact.uri or ""
        if not uri.startswith(PVC_SCHEME):
            raise StepFailure(f"model {name} version {version} is at {uri}, outside the run's "
                              "model store; register it from a run's files")
        properties = {k: str(v) for k, v in (found.custom_properties or {}).items()}
        aliases = [k.removeprefix(ALIAS_PROPERTY)
                   for k, v in (model.custom_properties or {}).items()
                   if k.startswith(ALIAS_PROPERTY) and str(v) == version]
        return ModelVersion(name, version, properties.pop(RUN_PROPERTY, ""),
                            uri.removeprefix(PVC_SCHEME), properties, aliases)

    def close(self) -> None:
        for forward in self._forwards:
            forward.stop()
        self._forwards.clear()
