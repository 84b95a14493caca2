"""Fixtures for the Kubernetes engine tests: the API double, a client for it, recorded commands."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client

sys.path.insert(0, str(Path(__file__).parent))

import upstream
from controllers import (
    installed_configs,
    run_workloads,
    serve_crds,
    serve_inference_services,
    serve_notebooks,
)
from kapi_double import KubeApiDouble, core_double, serve
from rbac import RBAC_API
from webhooks import (
    crd_schema,
    experiment,
    experiment_defaults,
    inference_service,
    kserve_resource_defaults,
    trainjob,
    unreachable_webhooks,
)

from kfbox.engines.kubernetes.kubeapi import KubeApi
from kfbox.engines.kubernetes.tools import CommandFailed


@dataclass
class Cluster:
    double: KubeApiDouble
    url: str
    kube: KubeApi


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A Kubernetes API double (kmock subclass) on 127.0.0.1 with CRD and workload controllers;
    custom resources are checked against the upstream CRD schemas at the pinned tags, and a pod
    behind an unreachable webhook is refused as the API server refuses it."""
    double = core_double()
    double.admission += [crd_schema, unreachable_webhooks]
    serve_crds(double)
    run_workloads(double)
    with serve(double) as url:
        configuration = client.Configuration()
        configuration.host = url
        yield Cluster(double, url, KubeApi(client.ApiClient(configuration)))


@dataclass
class RecordingRunner:
    """Records each host command (kind, kubectl, docker) and answers from a script: the
    first (prefix, returncode, stdout) whose prefix matches the command's arguments."""

    script: list[tuple[tuple[str, ...], int, str]] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)
    stdins: list[str | None] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None, check: bool = True,
                 timeout: float = 600) -> subprocess.CompletedProcess[str]:

        args = [Path(argv[0]).name, *argv[1:]]
        self.calls.append(args)
        self.stdins.append(stdin)
        code, out = 0, ""
        for prefix, rc, text in self.script:
            if tuple(args[: len(prefix)]) == prefix:
                code, out = rc, text
                break
        if check and code:
            raise CommandFailed(argv, code, out)
        return subprocess.CompletedProcess(list(argv), code, out, "")

    def commands(self, tool: str) -> list[list[str]]:
        return [c for c in self.calls if c[0] == tool]


@pytest.fixture
def runner() -> RecordingRunner:
    return RecordingRunner()


KUBEFLOW_KINDS = [
    ("trainer.kubeflow.org/v1alpha1", "trainjobs", "TrainJob", True),
    ("trainer.kubeflow.org/v1alpha1", "clustertrainingruntimes", "ClusterTrainingRuntime", False),
    ("trainer.kubeflow.org/v1alpha1", "trainingruntimes", "TrainingRuntime", True),
    ("kubeflow.org/v1beta1", "experiments", "Experiment", True),
    ("kubeflow.org/v1beta1", "trials", "Trial", True),
    ("kubeflow.org/v1", "notebooks", "Notebook", True),
    ("serving.kserve.io/v1beta1", "inferenceservices", "InferenceService", True),
]


@pytest.fixture
def kubeflow(cluster: Cluster) -> Cluster:
    """The double as a cluster with the core platform installed: its kinds served, the
    Trainer's and Katib's validating webhooks, KServe's and the notebook controller's
    stand-ins, and what the install leaves that clients and controllers read (the stock
    `torch-distributed` ClusterTrainingRuntime, a fixture shaped like trainer-runtimes' own and
    checked against its CRD; the Trainer's public version ConfigMap; katib-config, Katib's
    controller role and inferenceservice-config, from the upstream facts)."""
    import yaml

    for group_version, plural, kind, namespaced in KUBEFLOW_KINDS:
        cluster.double.declare(group_version, plural, kind, namespaced=namespaced, status=True)
    cluster.double.admission += [trainjob, experiment_defaults, experiment,
                                 kserve_resource_defaults, inference_service]
    runtime = yaml.safe_load((Path(__file__).parent / "fixtures" / "torch-distributed.yaml")
                             .read_text())
    cluster.double.create("trainer.kubeflow.org/v1alpha1", "clustertrainingruntimes", runtime)
    public = upstream.component("trainer")["public_configmap"]
    namespace, name = public["name"].split("/")
    cluster.double.put("v1", "configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace}, "data": public["data"]})
    readers = upstream.component("trainer")["public_configmap_readers"]
    meta = {"name": name, "namespace": namespace}
    cluster.double.put(RBAC_API, "roles", {
        "apiVersion": RBAC_API, "kind": "Role", "metadata": dict(meta),
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [name],
                   "verbs": readers["verbs"]}]})
    cluster.double.put(RBAC_API, "rolebindings", {
        "apiVersion": RBAC_API, "kind": "RoleBinding", "metadata": dict(meta),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                      "name": readers["group"]}]})
    installed_configs(cluster.double)
    serve_inference_services(cluster.double)
    serve_notebooks(cluster.double)
    return cluster
