"""The platform seam on Kubernetes: TrainJobs, Katib Experiments, InferenceServices, notebooks."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes import client

from kfbox.sandbox.engines.kubernetes import registry
from kfbox.sandbox.engines.kubernetes.kubeapi import KubeApi, KubeError
from kfbox.sandbox.engines.kubernetes.storemount import trainer_options
from kfbox.sandbox.engines.kubernetes.workspace import STORE_CLAIM, RunNamespace
from kfbox.sandbox.metrics import parse_metrics
from kfbox.sandbox.platform import (
    MODEL_DIR_ENV,
    MODEL_STORE_MOUNT,
    BuiltImage,
    Endpoint,
    ServeRequest,
    StepFailure,
    TrainJob,
    TrainResult,
    error_line,
)

if TYPE_CHECKING:
    from kfbox.sandbox.engines.kubernetes.engine import KubernetesEngine
    from kfbox.sandbox.engines.kubernetes.tools import Tools

TRAINING_RUNTIME = "torch-distributed"
"""The Trainer's stock ClusterTrainingRuntime (trainer-runtimes); the image is the job's own."""


def node_resources(gpus: int, cpus: float, memory: str) -> dict[str, Any]:
    resources: dict[str, Any] = {"cpu": cpus, "memory": memory.upper() + "i"}
    if gpus:
        resources["gpu"] = gpus
    return resources


@dataclass
class KubeTraining:
    """Training through the Kubeflow SDK's TrainerClient (Kubernetes backend): a TrainJob."""

    kube: KubeApi
    namespace: str
    resources: dict[str, Any]
    poll_s: float = 2

    def client(self) -> Any:
        from kubeflow.common.types import KubernetesBackendConfig
        from kubeflow.trainer import TrainerClient

        return TrainerClient(
            backend_config=KubernetesBackendConfig(
                namespace=self.namespace, client_configuration=self.kube.api.configuration
            )
        )

    def run(self, job: TrainJob) -> TrainResult:
        from kubeflow.trainer import CustomTrainerContainer
        from kubeflow.trainer.options import Name, TrainerArgs, TrainerCommand

        trainer_client = self.client()
        started = time.monotonic()
        trainer = CustomTrainerContainer(
            image=job.image,
            num_nodes=job.num_nodes,
            resources_per_node=node_resources(job.gpus, **self.resources),
        )
        args = [f"--{k}={v}" for k, v in job.args.items()]
        try:
            name = trainer_client.train(
                runtime=TRAINING_RUNTIME,
                trainer=trainer,
                options=[
                    Name(job.name),
                    TrainerCommand(job.command),
                    TrainerArgs(args),
                    *trainer_options(job.model_key),
                ],
            )
            final = trainer_client.wait_for_job_status(
                name,
                status={"Complete", "Failed"},
                timeout=int(job.timeout_s),
                polling_interval=max(1, int(self.poll_s)),
            )
        except (RuntimeError, TimeoutError, ValueError) as exc:
            raise StepFailure(f"TrainJob {job.name}: {exc}") from exc
        logs = "\n".join(trainer_client.get_job_logs(name))
        if final.status != "Complete":
            raise StepFailure(
                f"TrainJob {job.name} {final.status.lower()}: {error_line(logs)}", logs=logs
            )
        return TrainResult(
            job.name, True, parse_metrics(logs), job.model_key, logs, time.monotonic() - started
        )


@dataclass
class KubeServing:
    """Serving with a KServe InferenceService in raw-deployment mode, reached by port-forward."""

    kube: KubeApi
    namespace: str
    tools: Tools
    kubeconfig: Path | None
    resources: dict[str, Any]
    poll_s: float = 2
    forwards: dict[str, Any] = field(default_factory=dict)

    def inference_service(self, request: ServeRequest) -> dict[str, Any]:
        from kserve import (
            V1beta1InferenceService,
            V1beta1InferenceServiceSpec,
            V1beta1PredictorSpec,
        )

        limits: dict[str, Any] = {
            "cpu": str(self.resources["cpus"]),
            "memory": self.resources["memory"].upper() + "i",
        }
        if request.gpus:
            limits["nvidia.com/gpu"] = str(request.gpus)
        container = client.V1Container(
            name="kserve-container",
            image=request.image,
            command=request.command,
            env=[
                client.V1EnvVar(
                    name=MODEL_DIR_ENV, value=f"{MODEL_STORE_MOUNT}/{request.model_key}"
                )
            ],
            ports=[client.V1ContainerPort(container_port=8080, protocol="TCP")],
            volume_mounts=[
                client.V1VolumeMount(name="store", mount_path=MODEL_STORE_MOUNT, read_only=True)
            ],
            resources=client.V1ResourceRequirements(limits=limits),
        )
        isvc = V1beta1InferenceService(
            api_version="serving.kserve.io/v1beta1",
            kind="InferenceService",
            metadata=client.V1ObjectMeta(
                name=request.name,
                namespace=self.namespace,
                annotations={"serving.kserve.io/deploymentMode": "RawDeployment"},
            ),
            spec=V1beta1InferenceServiceSpec(
                predictor=V1beta1PredictorSpec(
                    containers=[container],
                    volumes=[
                        client.V1Volume(
                            name="store",
                            persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                                claim_name=STORE_CLAIM
                            ),
                        )
                    ],
                )
            ),
        )
        return client.ApiClient().sanitize_for_serialization(isvc)

    def deploy(self, request: ServeRequest) -> Endpoint:
        self.kube.apply(self.inference_service(request))
        deadline = time.monotonic() + request.timeout_s
        while True:
            isvc = (
                self.kube.get(
                    "serving.kserve.io/v1beta1", "InferenceService", request.name, self.namespace
                )
                or {}
            )
            conditions = (isvc.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                waiting = [
                    c.get("message") or c["type"] for c in conditions if c.get("status") != "True"
                ]
                why = "; ".join(waiting[:2]) or "no status"
                raise StepFailure(
                    f"InferenceService {request.name} not ready after "
                    f"{request.timeout_s:.0f}s: {why}"
                )
            time.sleep(self.poll_s)
        url = self.port_forward(f"svc/{request.name}-predictor", 80)
        return Endpoint(request.name, url, request.model_name)

    def port_forward(self, target: str, port: int) -> str:
        from kfbox.sandbox.engines.kubernetes.portforward import PortForward

        forward = PortForward.start(self.tools, self.kubeconfig, self.namespace, target, port)
        self.forwards[target] = forward
        return forward.url

    def delete(self, name: str) -> None:
        forward = self.forwards.pop(f"svc/{name}-predictor", None)
        if forward is not None:
            forward.stop()
        self.kube.delete("serving.kserve.io/v1beta1", "InferenceService", name, self.namespace)


@dataclass
class KubeImages:
    """Images built on the host with `docker build` and pushed to the sandbox registry."""

    tools: Tools
    registry_host: str

    def build(self, context: Path, repository: str, *, build_args: dict[str, str]) -> BuiltImage:
        started = time.monotonic()
        tag = f"{self.registry_host}/{repository}:latest"
        argv = ["build", "--pull=false", "-t", tag]
        for key, value in build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        try:
            self.tools("docker", *argv, str(context), timeout=1800)
            self.tools("docker", "push", tag, timeout=900)
            digest = self.tools("docker", "inspect", "-f", "{{index .RepoDigests 0}}", tag)
        except Exception as exc:
            raise StepFailure(f"building {repository}: {exc}") from exc
        reference = digest.stdout.strip()
        return BuiltImage(reference, reference.rpartition("@")[2], time.monotonic() - started)


@dataclass
class KubeDiagnostics:
    kube: KubeApi
    namespace: str

    def collect(self, dest: Path) -> None:
        """Events, each object's YAML (a describe), and every pod's logs of the run namespace."""
        import yaml

        dest.mkdir(parents=True, exist_ok=True)
        try:
            events = self.kube.list("v1", "Event", self.namespace)
        except KubeError as exc:
            (dest / "events.txt").write_text(f"cannot list events: {exc}\n")
            events = []
        (dest / "events.txt").write_text(
            "".join(
                f"{e.get('lastTimestamp') or ''} {e.get('type', '')} "
                f"{(e.get('involvedObject') or {}).get('kind', '')}/"
                f"{(e.get('involvedObject') or {}).get('name', '')}: {e.get('message', '')}\n"
                for e in events
            )
        )
        kinds = [
            ("v1", "Pod"),
            ("trainer.kubeflow.org/v1alpha1", "TrainJob"),
            ("kubeflow.org/v1beta1", "Experiment"),
            ("serving.kserve.io/v1beta1", "InferenceService"),
            ("kubeflow.org/v1", "Notebook"),
        ]
        for api_version, kind in kinds:
            try:
                objects = self.kube.list(api_version, kind, self.namespace)
            except KubeError:
                continue
            for obj in objects:
                name = obj["metadata"]["name"]
                (dest / f"{kind.lower()}-{name}.yaml").write_text(yaml.safe_dump(obj))
                if kind == "Pod":
                    for container in obj["spec"].get("containers", []):
                        try:
                            logs = self.kube.pod_logs(name, self.namespace, container["name"])
                        except KubeError as exc:
                            logs = f"cannot read logs: {exc}\n"
                        (dest / f"logs-{name}-{container['name']}.txt").write_text(logs)


@dataclass
class KubePlatform:
    """The platform for one journey run: its own namespace, deleted on close unless kept."""

    engine: KubernetesEngine
    run_dir: Path
    workspace: RunNamespace
    training: KubeTraining
    tuning: Any
    serving: KubeServing
    images: KubeImages
    notebooks: Any
    artifacts: Any
    diagnostics: KubeDiagnostics

    @classmethod
    def open(cls, engine: KubernetesEngine, run_dir: Path) -> KubePlatform:
        from kfbox.sandbox.engines.kubernetes.notebooks import KubeArtifacts, KubeNotebooks
        from kfbox.sandbox.engines.kubernetes.tuning import KubeTuning

        kube = engine.kube()
        spec = engine.spec
        workspace = RunNamespace.create(kube, spec.name)
        ns = workspace.name
        resources = {"cpus": spec.resources.cpus, "memory": spec.resources.memory}
        registry_host = os.environ.get("KFBOX_REGISTRY") or registry.host_address(spec)
        training = KubeTraining(kube, ns, resources)
        notebooks = KubeNotebooks(kube, ns, engine.tools, engine.kubeconfig, run_dir)
        return cls(
            engine=engine,
            run_dir=run_dir,
            workspace=workspace,
            training=training,
            tuning=KubeTuning(kube, ns, training),
            serving=KubeServing(kube, ns, engine.tools, engine.kubeconfig, resources),
            images=KubeImages(engine.tools, registry_host),
            notebooks=notebooks,
            artifacts=KubeArtifacts(notebooks),
            diagnostics=KubeDiagnostics(kube, ns),
        )

    @property
    def runtime_image(self) -> str:
        """The ML runtime scenario images build FROM: built on the host like the lite engine's
        (images are built on the host and pushed to the cluster's registry)."""
        from kfbox.sandbox.docker_engine import connect
        from kfbox.sandbox.images.build import ensure_component_image
        from kfbox.sandbox.progress import quiet_reporter

        return ensure_component_image(
            "runtime", quiet_reporter(), connect(), ca_bundle=self.engine.spec.ca_bundle
        )

    def gpu_count(self) -> int:
        from kfbox.sandbox.engines.kubernetes.nvkind import advertised_gpus

        return max((advertised_gpus(n) for n in self.workspace.kube.list("v1", "Node")), default=0)

    def collect_diagnostics(self, dest: Path) -> None:
        self.diagnostics.collect(dest)

    def close(self, *, keep: bool = False) -> None:
        for forward in list(self.serving.forwards.values()):
            forward.stop()
        self.notebooks.close()
        if not keep:
            self.workspace.delete()
