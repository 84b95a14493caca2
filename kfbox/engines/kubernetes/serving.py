"""Serving with a KServe InferenceService in Standard (raw Deployment) mode, reached by
port-forward.

KServe v0.20.0 picks the deployment mode from the InferenceService's annotation before the
cluster default (pkg/controller/v1beta1/inferenceservice/utils/utils.go, GetDeploymentMode), so
the annotation alone keeps it off Knative, whatever a cluster's inferenceservice-config says;
the predictor then answers on the Service `<name>-predictor`, port 80. The annotation says
`Standard`, not the deprecated alias `RawDeployment`: once the controller has recorded
`Standard` in the status, the validating webhook refuses an update whose annotation differs
from it as a string (inference_service_validation.go, validateDeploymentMode), so re-applying
an InferenceService annotated `RawDeployment` would be refused."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from kfbox.engines.kubernetes import quantities
from kfbox.engines.kubernetes.adjust import STANDARD_DEPLOYMENT
from kfbox.engines.kubernetes.kubeapi import KubeApi, KubeError
from kfbox.engines.kubernetes.portforward import PortForward
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.kubernetes.workspace import STORE_CLAIM
from kfbox.engines.platform import (
    MODEL_DIR_ENV,
    MODEL_STORE_MOUNT,
    Endpoint,
    ServeRequest,
    StepFailure,
)

ISVC_API = "serving.kserve.io/v1beta1"
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"
"""The label KServe gives an InferenceService's pods, valued with its name."""
DEPLOYMENT_MODE = {"serving.kserve.io/deploymentMode": STANDARD_DEPLOYMENT}
PREDICTOR_PORT = 8080
SERVICE_PORT = 80


def predictor_service(name: str) -> str:
    return f"svc/{name}-predictor"


@dataclass
class KubeServing:
    kube: KubeApi
    namespace: str
    tools: Tools
    kubeconfig: Path | None
    resources: dict[str, Any]
    gpu_runtime_class: str | None = None
    """RuntimeClass of GPU model servers (kind: `nvidia`, runc staying the default)."""
    poll_s: float = 2
    forwards: dict[str, PortForward] = field(default_factory=dict)

    def inference_service(self, request: ServeRequest) -> dict[str, Any]:
        """The InferenceService, built with KServe's typed models."""
        from kserve import (
            V1beta1InferenceService,
            V1beta1InferenceServiceSpec,
            V1beta1PredictorSpec,
        )

        limits = {"cpu": quantities.cpu(self.resources["cpus"]),
                  "memory": quantities.memory(self.resources["memory"])}
        if request.gpus:
            limits["nvidia.com/gpu"] = str(request.gpus)
        container = client.V1Container(
            name="kserve-container",
            image=request.image,
            command=request.command,
            env=[client.V1EnvVar(name=MODEL_DIR_ENV,
                                 value=f"{MODEL_STORE_MOUNT}/{request.model_key}")],
            ports=[client.V1ContainerPort(container_port=PREDICTOR_PORT, protocol="TCP")],
            volume_mounts=[
                client.V1VolumeMount(name="store", mount_path=MODEL_STORE_MOUNT, read_only=True)
            ],
            # Requests with the limits: KServe fills an unset request from
            # inferenceservice-config (1 CPU, 2Gi as shipped; inference_service_defaults.go),
            # which above a smaller limit makes the predictor's pods invalid.
            resources=client.V1ResourceRequirements(requests=dict(limits), limits=limits),
        )
        isvc = V1beta1InferenceService(
            api_version=ISVC_API,
            kind="InferenceService",
            metadata=client.V1ObjectMeta(name=request.name, namespace=self.namespace,
                                         annotations=dict(DEPLOYMENT_MODE)),
            spec=V1beta1InferenceServiceSpec(
                predictor=V1beta1PredictorSpec(
                    containers=[container],
                    runtime_class_name=self.gpu_runtime_class if request.gpus else None,
                    volumes=[client.V1Volume(
                        name="store",
                        persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                            claim_name=STORE_CLAIM))],
                )
            ),
        )
        return client.ApiClient().sanitize_for_serialization(isvc)

    def deploy(self, request: ServeRequest) -> Endpoint:
        try:
            self.kube.apply(self.inference_service(request))
        except KubeError as exc:
            raise StepFailure(f"InferenceService {request.name} refused: {exc}") from exc
        deadline = time.monotonic() + request.timeout_s
        while True:
            isvc = self.kube.get(ISVC_API, "InferenceService", request.name,
                                 self.namespace) or {}
            conditions = (isvc.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                waiting = [c.get("message") or c["type"] for c in conditions
                           if c.get("status") != "True"]
                why = "; ".join(waiting[:2]) or "no status"
                raise StepFailure(f"InferenceService {request.name} not ready after "
                                  f"{request.timeout_s:.0f}s: {why}")
            time.sleep(self.poll_s)
        target = predictor_service(request.name)
        forward = PortForward.start(self.tools, self.kubeconfig, self.namespace, target,
                                    SERVICE_PORT)
        self.forwards[target] = forward
        return Endpoint(request.name, forward.url, request.model_name)

    def logs(self, name: str) -> str:
        """The model server's output: every container of the InferenceService's predictor pods
        (labelled with its name, kserve v0.20.0 pkg/constants/constants.go
        InferenceServicePodLabelKey)."""
        try:
            pods = self.kube.list("v1", "Pod", self.namespace,
                                  selector=f"{ISVC_POD_LABEL}={name}")
            return "".join(self.kube.pod_logs(pod["metadata"]["name"], self.namespace)
                           for pod in pods)
        except KubeError:
            return ""  # gone with its namespace: the diagnostics keep what there was

    def delete(self, name: str) -> None:
        forward = self.forwards.pop(predictor_service(name), None)
        if forward is not None:
            forward.stop()
        self.kube.delete(ISVC_API, "InferenceService", name, self.namespace)

    def close(self) -> None:
        for forward in self.forwards.values():
            forward.stop()
        self.forwards.clear()
