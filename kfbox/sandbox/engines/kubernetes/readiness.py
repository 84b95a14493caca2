"""Readiness gates: CRDs Established, Deployments Available, DaemonSets ready, webhooks served."""

from __future__ import annotations

from typing import Any

from kfbox.sandbox.engines.kubernetes.catalog import Readiness
from kfbox.sandbox.engines.kubernetes.kubeapi import KubeApi


def _condition(obj: dict[str, Any] | None, kind: str) -> bool:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond.get("status") == "True"
    return False


def _split(ref: str) -> tuple[str, str]:
    namespace, _, name = ref.partition("/")
    return namespace, name


def crd_established(kube: KubeApi, name: str) -> bool:
    crd = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
    return _condition(crd, "Established")


def deployment_available(kube: KubeApi, ref: str) -> bool:
    namespace, name = _split(ref)
    return _condition(kube.get("apps/v1", "Deployment", name, namespace), "Available")


def daemonset_ready(kube: KubeApi, ref: str) -> bool:
    namespace, name = _split(ref)
    status = (kube.get("apps/v1", "DaemonSet", name, namespace) or {}).get("status") or {}
    desired = int(status.get("desiredNumberScheduled", 0))
    return desired > 0 and int(status.get("numberReady", 0)) >= desired


def webhook_served(kube: KubeApi, name: str) -> bool:
    """A webhook answers when each Service it calls has at least one ready endpoint
    (a request to it before then fails every apply that it guards)."""
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        config = kube.get("admissionregistration.k8s.io/v1", kind, name)
        if config is not None:
            break
    else:
        return False
    for hook in config.get("webhooks") or []:
        service = (hook.get("clientConfig") or {}).get("service")
        if not service:
            continue
        endpoints = kube.get("v1", "Endpoints", service["name"], service["namespace"])
        subsets = (endpoints or {}).get("subsets") or []
        if not any(subset.get("addresses") for subset in subsets):
            return False
    return True


def pending(kube: KubeApi, ready: Readiness, extra_crds: list[str]) -> list[str]:
    """What is not ready yet, as short labels; empty when the component is ready."""
    waiting = [f"crd {c}" for c in dict.fromkeys([*ready.crds, *extra_crds])
               if not crd_established(kube, c)]
    waiting += [f"deployment {d}" for d in ready.deployments if not deployment_available(kube, d)]
    waiting += [f"daemonset {d}" for d in ready.daemonsets if not daemonset_ready(kube, d)]
    waiting += [f"webhook {w}" for w in ready.webhooks if not webhook_served(kube, w)]
    return waiting
