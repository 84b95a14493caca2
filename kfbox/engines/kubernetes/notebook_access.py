"""What the kind sandbox's notebook may do on the cluster: its pod runs as a service account of
its own that may start TrainJobs, Katib Experiments and InferenceServices in the notebook's
namespace and nothing else, and read what the Kubeflow SDK reads to start them and follow them
(runtimes, pods and their logs). No other kind, no other namespace, nothing cluster-wide but
reading the Trainer's ClusterTrainingRuntimes.

The rules are upstream's own "edit" roles for Kubeflow users, narrowed: where they let a user
create more (Katib's trials and suggestions, KServe's graphs, runtimes and LLM services), the
notebook may only read or nothing. Each rule names its source."""

from __future__ import annotations

from typing import Any

from kfbox.engines.base import BoundaryProbe

SERVICE_ACCOUNT = "kfbox-notebook"
RBAC_API = "rbac.authorization.k8s.io/v1"
READ = ["get", "list", "watch"]

NAMESPACE_RULES: list[dict[str, Any]] = [
    # kubeflow/trainer v2.3.0 manifests/overlays/kubeflow-platform/kubeflow-trainer-roles.yaml,
    # kubeflow-trainer-edit: TrainJobs created, followed and deleted; namespaced runtimes read;
    # the pods of a job, their logs and events read (the SDK's get_job_logs).
    {"apiGroups": ["trainer.kubeflow.org"], "resources": ["trainjobs"],
     "verbs": ["create", "patch", "get", "list", "watch", "delete"]},
    {"apiGroups": ["trainer.kubeflow.org"], "resources": ["trainingruntimes"], "verbs": READ},
    {"apiGroups": [""], "resources": ["pods", "pods/log", "events"], "verbs": READ},
    # kubeflow/katib v0.19.0 manifests/v1beta1/installs/katib-with-kubeflow/
    # kubeflow-katib-roles.yaml, kubeflow-katib-edit: Experiments as there; its trials and
    # suggestions, which Katib's controller makes, only read.
    {"apiGroups": ["kubeflow.org"], "resources": ["experiments"],
     "verbs": ["get", "list", "watch", "create", "delete", "patch", "update"]},
    {"apiGroups": ["kubeflow.org"], "resources": ["trials", "suggestions"], "verbs": READ},
    # kserve/kserve v0.20.0 config/overlays/kubeflow/cluster-role.yaml, kubeflow-kserve-edit:
    # InferenceServices only (not its graphs, runtimes, trained or LLM models, nor Knative's).
    {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"],
     "verbs": ["get", "list", "watch", "create", "delete", "patch", "update"]},
]
CLUSTER_RULES: list[dict[str, Any]] = [
    # kubeflow/trainer v2.3.0, same file, kubeflow-trainer-view-cluster-runtimes (bound there to
    # every authenticated user): the ClusterTrainingRuntimes a TrainJob names.
    {"apiGroups": ["trainer.kubeflow.org"], "resources": ["clustertrainingruntimes"],
     "verbs": READ},
]


def cluster_role_name(namespace: str) -> str:
    return f"{SERVICE_ACCOUNT}-{namespace}"


def access_objects(namespace: str) -> list[dict[str, Any]]:
    """The notebook's service account in `namespace`, a Role and a RoleBinding there, and a
    ClusterRole and ClusterRoleBinding for reading the cluster's training runtimes."""
    account = {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}
    cluster_name = cluster_role_name(namespace)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace}},
        {"apiVersion": RBAC_API, "kind": "Role",
         "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace},
         "rules": NAMESPACE_RULES},
        {"apiVersion": RBAC_API, "kind": "RoleBinding",
         "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": SERVICE_ACCOUNT},
         "subjects": [account]},
        {"apiVersion": RBAC_API, "kind": "ClusterRole",
         "metadata": {"name": cluster_name}, "rules": CLUSTER_RULES},
        {"apiVersion": RBAC_API, "kind": "ClusterRoleBinding",
         "metadata": {"name": cluster_name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": cluster_name},
         "subjects": [account]},
    ]


BOUNDARY = BoundaryProbe(
    source="""import os

from kubernetes import client, config
from kubernetes.client.rest import ApiException

try:
    config.load_incluster_config()
except config.ConfigException:
    config.load_kube_config()  # outside a pod, the kubeconfig that stands for its credentials
namespace = os.environ["POD_NAMESPACE"]
core, rbac = client.CoreV1Api(), client.RbacAuthorizationV1Api()
root = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kfbox-escape"},
        "spec": {"hostPID": True, "hostNetwork": True,
                 "containers": [{"name": "c", "image": "busybox",
                                 "securityContext": {"privileged": True},
                                 "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
                 "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}
admin = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "kfbox-escape"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "cluster-admin"},
         "subjects": [{"kind": "Group", "name": "system:serviceaccounts",
                       "apiGroup": "rbac.authorization.k8s.io"}]}
attempts = {
    "a privileged pod with the host's root": lambda: core.create_namespaced_pod(namespace, root),
    "the namespace's secrets": lambda: core.list_namespaced_secret(namespace),
    "cluster-admin for itself": lambda: rbac.create_namespaced_role_binding(namespace, admin),
    "the pods of kube-system": lambda: core.list_namespaced_pod("kube-system"),
    "the cluster's nodes": lambda: core.list_node(),
}
made = 0
for what, attempt in attempts.items():
    try:
        attempt()
        made += 1
        print("not refused:", what)
    except ApiException as exc:
        made += exc.status != 403
        print(f"refused ({exc.status}):", what)
print(f"escapes_tried={len(attempts)}")
print(f"escapes_made={made}")
sockets = [p for p in ("/var/run/docker.sock", "/run/docker.sock",
                       "/run/containerd/containerd.sock") if os.path.exists(p)]
print(f"host_engine_sockets={len(sockets)}")
""",
    prints=[{"metric": "escapes_tried", "at_least": 5},
            {"metric": "escapes_made", "at_most": 0},
            {"metric": "host_engine_sockets", "at_most": 0}])
"""The notebook's boundary on Kubernetes is its service account: from its kernel, with its own
credentials, each escape through the API (a privileged pod with the host's root, the secrets,
cluster-admin, another namespace, the nodes) must be refused with 403, and the pod holds no
engine socket."""
