"""Readiness gates: CRDs Established, Deployments Available, DaemonSets ready, webhooks served,
and kfbox's checks of a component's configuration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import yaml

from kfbox.engines.kubernetes import jupyter
from kfbox.engines.kubernetes.catalog import Readiness
from kfbox.engines.kubernetes.kubeapi import KubeApi

TRAINJOB_TRIAL = "TrainJob.v1alpha1.trainer.kubeflow.org"
KATIB_CONFIG = ("kubeflow", "katib-config", "katib-config.yaml")
KATIB_CONTROLLER_ROLE = "katib-controller"


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
    """A webhook answers when each Service it calls has at least one ready endpoint (a request
    to it before then fails every apply that it guards). A validating and a mutating
    configuration may share the name (Katib's do): both must be served."""
    configs = [c for c in (kube.get("admissionregistration.k8s.io/v1", kind, name)
                           for kind in ("ValidatingWebhookConfiguration",
                                        "MutatingWebhookConfiguration")) if c is not None]
    if not configs:
        return False
    for hook in (h for config in configs for h in config.get("webhooks") or []):
        service = (hook.get("clientConfig") or {}).get("service")
        if not service:
            continue
        endpoints = kube.get("v1", "Endpoints", service["name"], service["namespace"])
        subsets = (endpoints or {}).get("subsets") or []
        if not any(subset.get("addresses") for subset in subsets):
            return False
    return True


def katib_trainjob_trials(kube: KubeApi) -> str | None:
    """Katib runs TrainJob trials only when katib-config lists the kind in trialResources and
    its controller may create TrainJobs (both from Katib v0.19.0); None when it can."""
    namespace, name, key = KATIB_CONFIG
    config = kube.get("v1", "ConfigMap", name, namespace)
    if config is None:
        return f"configmap {namespace}/{name}"
    settings = yaml.safe_load((config.get("data") or {}).get(key) or "") or {}
    trials = ((settings.get("init") or {}).get("controller") or {}).get("trialResources") or []
    if TRAINJOB_TRIAL not in trials:
        return (f"{TRAINJOB_TRIAL} in {namespace}/{name} trialResources (Katib v0.19.0 or "
                "later lists it; then restart katib-controller)")
    role = kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", KATIB_CONTROLLER_ROLE) or {}
    for rule in role.get("rules") or []:
        if {"trainer.kubeflow.org", "*"} & set(rule.get("apiGroups") or []) and \
                {"trainjobs", "*"} & set(rule.get("resources") or []) and \
                {"create", "*"} & set(rule.get("verbs") or []):
            return None
    return f"clusterrole {KATIB_CONTROLLER_ROLE} allowing create on trainjobs"


CHECKS: dict[str, Callable[[KubeApi], str | None]] = {
    "katib-trainjob-trials": katib_trainjob_trials,
    "sandbox-notebook": jupyter.sandbox_pending,
}


def pending(kube: KubeApi, ready: Readiness, extra_crds: Sequence[str]) -> list[str]:
    """What is not ready yet, as short labels; empty when the component is ready."""
    waiting = [f"crd {c}" for c in dict.fromkeys([*ready.crds, *extra_crds])
               if not crd_established(kube, c)]
    waiting += [f"deployment {d}" for d in ready.deployments if not deployment_available(kube, d)]
    waiting += [f"daemonset {d}" for d in ready.daemonsets if not daemonset_ready(kube, d)]
    waiting += [f"webhook {w}" for w in ready.webhooks if not webhook_served(kube, w)]
    if not waiting:  # a component's settings are read only once it runs
        waiting += [found for check in ready.checks if (found := CHECKS[check](kube))]
    return waiting
