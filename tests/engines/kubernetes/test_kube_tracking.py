"""Tracking on the Kubernetes engines, against the API double (a Deployment Available once its pod
exists, Services with endpoints) and the Model Registry double (mr_double.py, v0.3.8's REST
rules) talked to by the Kubeflow SDK's real `ModelRegistryClient`: the run's tracking server is
lite's image and command as a Deployment in the run's namespace, reached by port-forward; the
best model becomes a Model Registry version whose URI is KServe's pvc:// URI of its files in the
run's store, with its run, digest and alias read back; a registry that does not answer, a
server that never starts and a version outside the store are each one line. MLflow's own side
is a stand-in here (its client and server are proven for real on lite, tests/e2e)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import fake_kubectl
import kubernetes_validate
import pytest
from mr_double import ModelRegistryDouble, serve

from kfbox.engines.kubernetes import tracking
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.kubernetes.tracking import KubeTracking
from kfbox.engines.platform import MODEL_STORE_MOUNT, StepFailure, TrackedRun
from kfbox.engines.tracking import TRACKING_PORT, TRACKING_USER, server_command
from tests.support.net import free_port

# kubeflow 0.5.0's register_model passes model-registry 0.3.14 the deprecated `description`.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'description' parameter is deprecated:DeprecationWarning")
NAMESPACE = "kfbox-run-abc123"
IMAGE = "127.0.0.1:5000/kfbox/tracking@sha256:" + "c" * 64


@dataclass
class RunsStandIn:
    """MLflow's side as KubeTracking calls it (MlflowTracking's record, read, store_model)."""

    url: str
    user: str
    password: str
    store_folder: str
    recorded: list[TrackedRun] = field(default_factory=list)
    stored: list[tuple[str, Path]] = field(default_factory=list)

    def record(self, run: TrackedRun) -> str:
        self.recorded.append(run)
        return f"run{len(self.recorded)}"

    def store_model(self, run_id: str, files: Path) -> str:
        self.stored.append((run_id, files))
        return f"{self.store_folder}/1/{run_id}/artifacts/model"


@pytest.fixture
def registry() -> Iterator[tuple[ModelRegistryDouble, int]]:
    double = ModelRegistryDouble()
    with serve(double) as port:
        yield double, port


@pytest.fixture
def forwards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry) -> Tools:
    """kubectl whose forward to Model Registry lands on its double, any other nowhere."""
    _, port = registry
    kubectl = fake_kubectl.install(tmp_path, monkeypatch, free_port(),
                                   {tracking.REGISTRY_SERVICE: port})
    return Tools(which={"kubectl": str(kubectl)})


def forwarded(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "kubectl.log").read_text().splitlines()]


def made(kubeflow, tools: Tools, **kwargs) -> KubeTracking:
    kubeflow.kube.apply({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": NAMESPACE}})
    return KubeTracking(kubeflow.kube, NAMESPACE, tools, None, lambda: IMAGE,
                        runs=RunsStandIn, poll_s=0.05, **kwargs)


def test_a_runs_tracking_server_is_lites_image_and_command_in_its_namespace(
        kubeflow, forwards, tmp_path) -> None:
    tracker = made(kubeflow, forwards)
    assert tracker.url == ""  # nothing started before the track step needs it
    assert tracker.record(TrackedRun("digits", "train", {"lr": "0.1"}, {"acc": [0.9]})) == "run1"
    double = kubeflow.double
    deployment = double.get("apps/v1", "deployments", NAMESPACE, tracking.SERVER)
    secret = double.get("v1", "secrets", NAMESPACE, tracking.LOGIN_SECRET)
    service = double.get("v1", "services", NAMESPACE, tracking.SERVER)
    for obj in (deployment, secret, service):
        kubernetes_validate.validate({k: v for k, v in obj.items() if k != "status"}, "1.32",
                                     strict=True)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["command"][:container["command"].index("--allowed-hosts")] == \
        server_command([])[:-2]
    hosts = container["command"][-1].split(",")
    assert f"{tracking.SERVER}:{TRACKING_PORT}" in hosts and "127.0.0.1:*" in hosts
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[MODEL_STORE_MOUNT]]["persistentVolumeClaim"]["claimName"] == \
        "kfbox-store"
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False
    assert container["envFrom"] == [{"secretRef": {"name": tracking.LOGIN_SECRET}}]
    # The run's server, reached through a port-forward to its Service, with its own login.
    (forward,) = forwarded(tmp_path)
    assert forward[forward.index("-n") + 1:] == [NAMESPACE, f"svc/{tracking.SERVER}",
                                                 f":{TRACKING_PORT}"]
    runs = tracker.runs
    assert runs.url == tracker.url and runs.url.startswith("http://127.0.0.1:")
    assert (runs.user, runs.store_folder) == (TRACKING_USER, "tracking")
    assert secret["stringData"]["MLFLOW_AUTH_ADMIN_PASSWORD"] == runs.password
    assert len(runs.password) >= 32
    assert runs.password not in (tmp_path / "kubectl.log").read_text()
    tracker.close()


def test_the_best_model_is_a_model_registry_version_through_the_kubeflow_sdk(
        kubeflow, forwards, registry, tmp_path) -> None:
    double, _ = registry
    tracker = made(kubeflow, forwards)
    tags = {"kfbox.files_sha256": "f" * 64, "kfbox.image_digest": "sha256:" + "a" * 64}
    first = tracker.register("digits", "run7", tmp_path, tags=tags, alias="champion")
    assert (first.name, first.version, first.run_id) == ("digits", "1", "run7")
    assert first.model_key == "tracking/1/run7/artifacts/model"
    assert first.aliases == ["champion"]
    assert first.tags["kfbox.files_sha256"] == "f" * 64
    assert tracker.runs.stored == [("run7", tmp_path)]  # the files logged to the run first
    # What the registry holds: the version's artifact at KServe's pvc:// URI of the store key.
    (artifact,) = double.model_artifacts("digits", "1")
    assert artifact["uri"] == "pvc://kfbox-store/tracking/1/run7/artifacts/model"
    (stored,) = double.model_versions("digits")
    assert stored["customProperties"]["kfbox.mlflow_run_id"]["string_value"] == "run7"
    # A second version takes the alias; the first keeps its files and loses the alias.
    second = tracker.register("digits", "run9", tmp_path, tags=tags, alias="champion")
    assert (second.version, second.aliases) == ("2", ["champion"])
    assert tracker.version("digits", "1").aliases == []
    assert tracker.version("digits", "1").model_key == first.model_key
    model = double.registered_model("digits")
    assert model["customProperties"]["kfbox.alias.champion"]["string_value"] == "2"
    (forward,) = [f for f in forwarded(tmp_path) if tracking.REGISTRY_SERVICE in f]
    assert forward[forward.index("-n") + 1:] == ["kubeflow", tracking.REGISTRY_SERVICE,
                                                 f":{tracking.REGISTRY_PORT}"]
    tracker.close()


def test_a_version_outside_the_runs_store_is_refused_in_one_line(
        kubeflow, forwards, registry) -> None:
    tracker = made(kubeflow, forwards)
    tracker.registry.register_model("digits", "s3://bucket/model", version="1")
    with pytest.raises(StepFailure, match=r"^model digits version 1 is at s3://bucket/model, "
                                          r"outside the run's model store; register it from"):
        tracker.version("digits", "1")
    tracker.close()


def test_another_model_its_name_lookup_matches_is_never_taken(kubeflow, forwards,
                                                             tmp_path) -> None:
    """Model Registry v0.3.8 finds names with SQL LIKE: `dig_ts` finds `digits`."""
    tracker = made(kubeflow, forwards)
    tracker.registry.register_model("digits", "pvc://kfbox-store/x", version="1")
    with pytest.raises(StepFailure, match=r"^Kubeflow Model Registry found model digits for "
                                          r"dig_ts \(its name lookup takes _ and % as "):
        tracker.register("dig_ts", "run1", tmp_path, tags={}, alias="champion")
    tracker.close()


def test_a_model_registry_that_does_not_answer_is_one_line_naming_it_and_the_fix(
        kubeflow, tmp_path, monkeypatch) -> None:
    kubectl = fake_kubectl.install(tmp_path, monkeypatch, free_port())  # nothing listens
    tracker = made(kubeflow, Tools(which={"kubectl": str(kubectl)}))
    with pytest.raises(StepFailure) as failed:
        tracker.version("digits", "1")
    line = str(failed.value)
    assert line.startswith("Kubeflow Model Registry (kubeflow/model-registry-service) could "
                           "not be reached: Cannot connect to host 127.0.0.1:")
    assert line.endswith("run `kfbox up` to install it again if it is missing")
    assert "\n" not in line
    tracker.close()


def test_a_tracking_server_that_never_becomes_available_is_one_line(kubeflow, forwards) -> None:
    tracker = made(kubeflow, forwards, ready_timeout_s=0)  # before the controller's pod
    with pytest.raises(StepFailure, match=rf"^the tracking server {NAMESPACE}/kfbox-tracking "
                                          r"is not available after 0 s; see its pod's events"):
        tracker.record(TrackedRun("digits", "train", {}, {}))
    tracker.close()


def test_an_image_that_cannot_be_pushed_fails_the_step_naming_it(kubeflow, forwards) -> None:
    def no_registry() -> str:
        raise StepFailure("no registry the cluster pulls from: set kubernetes.registry")

    tracker = KubeTracking(kubeflow.kube, NAMESPACE, forwards, None, no_registry,
                           runs=RunsStandIn)
    with pytest.raises(StepFailure, match=r"^the tracking server's image: no registry the "):
        tracker.record(TrackedRun("digits", "train", {}, {}))
    assert kubeflow.double.get("apps/v1", "deployments", NAMESPACE, tracking.SERVER) is None
