"""One namespace per journey run, with the model store volume; deleted afterwards unless kept."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from kfbox.engines.kubernetes.kubeapi import KubeApi

RUN_LABEL = "kfbox.run"
"""Every run namespace carries kfbox.run=<sandbox name>, so `down` finds them."""
METRICS_COLLECTOR_LABEL = {"katib.kubeflow.org/metrics-collector-injection": "enabled"}
"""Katib (kubeflow/katib v0.19.0 pkg/webhook/v1beta1/common/const.go) refuses an Experiment in
a namespace without this label, and injects its metrics collector only into such namespaces."""
STORE_CLAIM = "kfbox-store"
STORE_SIZE = "5Gi"


def namespace_object(name: str, sandbox: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {RUN_LABEL: sandbox, **METRICS_COLLECTOR_LABEL}}}


def store_claim(namespace: str) -> dict[str, Any]:
    """The model store: one ReadWriteOnce volume every workload of the run mounts."""
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": STORE_CLAIM, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": STORE_SIZE}}},
    }


@dataclass
class RunNamespace:
    kube: KubeApi
    sandbox: str
    name: str

    @classmethod
    def create(cls, kube: KubeApi, sandbox: str) -> RunNamespace:
        name = f"kfbox-run-{secrets.token_hex(3)}"
        kube.apply(namespace_object(name, sandbox))
        kube.apply(store_claim(name))
        return cls(kube, sandbox, name)

    def delete(self) -> None:
        self.kube.delete("v1", "Namespace", self.name)
