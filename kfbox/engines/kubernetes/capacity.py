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
