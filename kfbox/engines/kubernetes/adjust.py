"""Changes kfbox makes to a component's rendered upstream objects before applying them, named
by the lock's `adjust:`. Each changes the object in place of a second apply: applying part of
an object again with the same field manager would remove every field that apply left out
(server-side apply's ownership rule), as applying `{data: {deploy: ...}}` over KServe's
inferenceservice-config once removed its other keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kfbox.engines.kubernetes.nvkind import RUNTIME_CLASS
from kfbox.host.errors import KfboxError

Objects = list[dict[str, Any]]
KSERVE_NAMESPACE = "kserve"
KSERVE_CONFIG = (KSERVE_NAMESPACE, "inferenceservice-config")
STANDARD_DEPLOYMENT = "Standard"
"""KServe v0.20.0's name for raw deployment (pkg/constants/constants.go: `RawDeployment` is a
deprecated alias that NewDeployConfig and GetDeploymentMode turn into `Standard`)."""


def _find(objects: Objects, kind: str, namespace: str, name: str, why: str) -> dict[str, Any]:
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == kind and meta.get("name") == name and \
                meta.get("namespace") == namespace:
            return obj
    raise KfboxError(f"the manifest has no {kind} {namespace}/{name} ({why})",
                     fix="the upstream release changed: update the lock and kfbox together")


def kserve_namespace() -> Objects:
    """The namespace KServe runs in: its v0.20.0 release manifest (kserve.yaml) leaves the
    Namespace out (hack/release/generate-install.sh drops kind Namespace from
    config/overlays/all), so kfbox creates it with the component."""
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KSERVE_NAMESPACE}}]


def kserve_standard_deployment(objects: Objects) -> Objects:
    """KServe's default deployment mode becomes Standard (no Knative here; upstream ships
    `Serverless`): the `deploy` key of inferenceservice-config, whose other keys (ingress,
    storageInitializer, ...) stay as upstream wrote them."""
    namespace, name = KSERVE_CONFIG
    config = _find(objects, "ConfigMap", namespace, name, "KServe's deployment mode lives there")
    data = config.setdefault("data", {})
    deploy = json.loads(data.get("deploy") or "{}")
    deploy["defaultDeploymentMode"] = STANDARD_DEPLOYMENT
    data["deploy"] = json.dumps(deploy, indent=2)
    return objects


def nvidia_runtime_class(objects: Objects) -> Objects:
    """Every DaemonSet runs under RuntimeClass `nvidia`: nvkind keeps runc the default, and the
    device plugin needs the NVIDIA runtime to see the GPUs it advertises."""
    daemonsets = [o for o in objects if o.get("kind") == "DaemonSet"]
    if not daemonsets:
        raise KfboxError("the device plugin manifest has no DaemonSet",
                         fix="the upstream release changed: update the lock and kfbox together")
    for daemonset in daemonsets:
        daemonset["spec"]["template"]["spec"]["runtimeClassName"] = RUNTIME_CLASS
    return objects


MODEL_REGISTRY_NAMESPACE = "kubeflow"
"""Where Model Registry runs: its overlays name no namespace, and upstream installs it with
`kubectl apply -k overlays/db -n kubeflow` (kubeflow/model-registry v0.3.8
manifests/kustomize/README.md, the standalone section)."""
MODEL_REGISTRY_KINDS = {"ServiceAccount", "ConfigMap", "Secret", "Service",
                        "PersistentVolumeClaim", "Deployment"}
"""The kinds overlays/db renders at v0.3.8, all namespaced."""


def model_registry_namespace(objects: Objects) -> Objects:
    """Every object of Model Registry's overlay goes into `kubeflow`, as `-n kubeflow` puts
    them; a kind that may be cluster-scoped is refused rather than guessed."""
    for obj in objects:
        if obj.get("kind") not in MODEL_REGISTRY_KINDS:
            raise KfboxError(f"the model registry manifest has a {obj.get('kind')}, not a kind "
                             "kfbox knows to be namespaced",
                             fix="the upstream release changed: update the lock and kfbox "
                                 "together")
        obj.setdefault("metadata", {}).setdefault("namespace", MODEL_REGISTRY_NAMESPACE)
    return objects


ADJUSTMENTS: dict[str, Callable[[Objects], Objects]] = {
    "kserve-standard-deployment": kserve_standard_deployment,
    "model-registry-namespace": model_registry_namespace,
    "nvidia-runtime-class": nvidia_runtime_class,
}
