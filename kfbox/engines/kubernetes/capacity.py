"""Whether a step's pods fit the cluster before they are created: each node's allocatable CPU
and memory minus what the pods already on it request, against the pods the step will request.

The scheduler places a pod only on a node whose allocatable minus the requests of the pods
bound to it covers the pod's requests (kubernetes/kubernetes v1.32
pkg/scheduler/framework/plugins/noderesources/fit.go); a pod that fits nowhere stays Pending
until the step times out. kfbox's training nodes and trials request what they limit, so a
journey that cannot fit is refused in one line with the numbers instead."""

from __future__ import annotations

from dataclasses import dataclass

from kfbox.engines.kubernetes import quantities
from kfbox.engines.kubernetes.kubeapi import KubeApi, KubeError
from kfbox.engines.platform import StepFailure

DONE = {"Succeeded", "Failed"}
"""Pod phases whose requests the scheduler no longer counts."""


@dataclass
class Free:
    node: str
    cpus: float
    memory: float
    """bytes"""


def free(kube: KubeApi) -> list[Free] | None:
    """What each schedulable node can still allocate; None when the cluster does not let this
    client read nodes and pods (an existing cluster's RBAC may not): nothing is checked then."""
    try:
        nodes = kube.list("v1", "Node")
        pods = kube.list("v1", "Pod", all_namespaces=True)
    except KubeError as exc:
        if exc.status in (401, 403):
            return None
        raise
    left = {}
    for node in nodes:
        if (node.get("spec") or {}).get("unschedulable"):
            continue
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        left[node["metadata"]["name"]] = Free(
            node["metadata"]["name"], quantities.value(allocatable.get("cpu", 0)),
            quantities.value(allocatable.get("memory", 0)))
    for pod in pods:
        on = left.get((pod.get("spec") or {}).get("nodeName", ""))
        if on is None or (pod.get("status") or {}).get("phase") in DONE:
            continue
        for container in pod["spec"].get("containers") or []:
            requests = (container.get("resources") or {}).get("requests") or {}
            on.cpus -= quantities.value(requests.get("cpu", 0))
            on.memory -= quantities.value(requests.get("memory", 0))
    return list(left.values())


def placed(pods: int, cpus: float, memory: float, nodes: list[Free]) -> int:
    """How many of `pods` equal pods the nodes can take (each node as many as fit in it)."""
    return sum(min(pods, int(min(n.cpus / cpus if cpus else pods,
                                 n.memory / memory if memory else pods) + 1e-9))
               for n in nodes)


def require(kube: KubeApi, what: str, pods: int, resources: dict[str, object]) -> None:
    """StepFailure in one line, before anything is created, when `pods` pods of the sandbox's
    `resources` (cpus, memory) cannot all be scheduled at once."""
    nodes = free(kube)
    if not nodes:
        return  # unknown (no right to look, or no node listed): the step's own wait decides
    cpus = float(str(resources["cpus"]))
    memory = quantities.value(quantities.memory(str(resources["memory"])))
    if placed(pods, cpus, memory, nodes) >= pods:
        return
    room = ", ".join(f"{n.node} {max(n.cpus, 0):.2f} CPU/{max(n.memory, 0) / 2**30:.1f} GiB"
                     for n in nodes)
    raise StepFailure(
        f"{what} needs {pods} pod(s) of {cpus:g} CPU and {resources['memory']} each at once; "
        f"the cluster can still allocate {room} (allocatable minus requests): lower "
        "resources.cpus/memory, or give the nodes more (kind: Docker's CPUs and memory)")


def shared_store(kube: KubeApi, namespace: str, claim: str, what: str, pods: int) -> None:
    """StepFailure in one line when `pods` pods at once on a multi-node cluster would share a
    model store claim only one node can mount: a ReadWriteOnce volume attaches to one node
    (kubernetes/kubernetes v1.32 pkg/controller/volume/attachdetach refuses a second node's
    attach, a local-path PV's node affinity keeps pods elsewhere Pending), so a 2-node job or
    parallel trials placed on other nodes would wait until the step timed out. The claim's
    access modes are the bound volume's (status) when bound, else what it asks (spec).
    Nothing is checked where nodes or the claim cannot be read, or on one node."""
    if pods <= 1:
        return
    try:
        nodes = [n for n in kube.list("v1", "Node")
                 if not (n.get("spec") or {}).get("unschedulable")]
        found = kube.get("v1", "PersistentVolumeClaim", claim, namespace)
    except KubeError as exc:
        if exc.status in (401, 403):
            return
        raise
    if len(nodes) <= 1 or found is None:
        return
    modes = ((found.get("status") or {}).get("accessModes")
             or (found.get("spec") or {}).get("accessModes") or [])
    if "ReadWriteMany" in modes:
        return
    storage_class = (found.get("spec") or {}).get("storageClassName") or "the default"
    raise StepFailure(
        f"{what} needs {pods} pods at once on a {len(nodes)}-node cluster, but the model store "
        f"claim {namespace}/{claim} is {'/'.join(modes) or 'without access modes'} "
        f"(storage class {storage_class}), which one node at a time can mount: give the "
        "cluster a ReadWriteMany default StorageClass (NFS, CephFS, ...), or run the journey "
        "with 1 node per job and 1 parallel trial")
