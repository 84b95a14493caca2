"""Stand-ins for the controllers of a real cluster, driving the API double's object status.

The double only stores objects; on a real cluster the API server serves a CRD's kind once it is
created, controllers mark Deployments Available, the Trainer and JobSet turn a TrainJob into
Pods, Katib turns an Experiment into Trials. These hooks do that much, so readiness gates and
the platform's waits can pass (or, when a hook is left out, time out) in tests. They act on
the stored objects synchronously, inside the request that wrote them.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kapi_double import KubeApiDouble


def serve_crds(double: KubeApiDouble) -> None:
    """A created CRD becomes Established and its kind appears in discovery."""

    def hook(plural: str, obj: dict[str, Any]) -> None:
        if plural != "customresourcedefinitions":
            return
        spec = obj["spec"]
        for version in spec["versions"]:
            double.declare(f"{spec['group']}/{version['name']}", spec["names"]["plural"],
                           spec["names"]["kind"], namespaced=spec["scope"] == "Namespaced",
                           status=True)
        double.set_status("apiextensions.k8s.io/v1", plural, None, obj["metadata"]["name"],
                          {"conditions": [{"type": "Established", "status": "True"}]})

    double.on_write.append(hook)


def run_workloads(double: KubeApiDouble) -> None:
    """Deployments become Available, DaemonSets ready, webhook Services get endpoints."""

    def hook(plural: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if plural == "deployments" and not obj.get("status"):
            double.set_status("apps/v1", plural, meta.get("namespace"), meta["name"],
                              {"conditions": [{"type": "Available", "status": "True"}]})
        elif plural == "daemonsets" and not obj.get("status"):
            double.set_status("apps/v1", plural, meta.get("namespace"), meta["name"],
                              {"desiredNumberScheduled": 1, "numberReady": 1})
        elif plural.endswith("webhookconfigurations"):
            for hook_ in obj.get("webhooks") or []:
                service = hook_["clientConfig"]["service"]
                if double.get("v1", "endpoints", service["namespace"], service["name"]) is None:
                    double.put("v1", "endpoints", {
                        "apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": service["name"], "namespace": service["namespace"]},
                        "subsets": [{"addresses": [{"ip": "10.0.0.9"}]}],
                    })

    double.on_write.append(hook)


TRAINER_API = "trainer.kubeflow.org/v1alpha1"
KATIB_API = "kubeflow.org/v1beta1"
Program = Callable[[dict[str, Any]], tuple[str, bool]]
"""What a training node's container does in a test: its Pod in, (stdout, succeeded) out."""


def _merge_pod_patch(pod_spec: dict[str, Any], patch: dict[str, Any]) -> None:
    """A runtimePatches pod patch merged into a pod spec; a container the runtime does not
    have is refused, as the Trainer's webhook refuses it."""
    pod_spec.setdefault("volumes", []).extend(patch.get("volumes") or [])
    for container_patch in patch.get("containers") or []:
        target = next((c for c in pod_spec["containers"]
                       if c["name"] == container_patch["name"]), None)
        if target is None:
            raise ValueError(f"runtime has no container {container_patch['name']!r}")
        for key in ("env", "volumeMounts"):
            target.setdefault(key, []).extend(container_patch.get(key) or [])


@dataclass
class TrainJobs:
    """Stand-in for the Trainer, JobSet and the kubelet: a TrainJob's node Pods are rendered
    from its ClusterTrainingRuntime, its trainer fields and its runtimePatches, labelled as
    JobSet labels them; each Pod "runs" `program` (its logs and phase), then the TrainJob gets
    a Complete or Failed condition."""

    double: KubeApiDouble
    program: Program
    pods: list[dict[str, Any]] = field(default_factory=list)

    def install(self) -> TrainJobs:
        self.double.on_write.append(self._hook)
        return self

    def _hook(self, plural: str, obj: dict[str, Any]) -> None:
        if plural == "trainjobs" and not obj.get("status"):
            self.reconcile(obj)

    def node_pods(self, trainjob: dict[str, Any]) -> list[dict[str, Any]]:
        meta, spec = trainjob["metadata"], trainjob["spec"]
        runtime = self.double.get(TRAINER_API, "clustertrainingruntimes", None,
                                  spec["runtimeRef"]["name"])
        if runtime is None:
            raise ValueError(f"ClusterTrainingRuntime {spec['runtimeRef']['name']} not found")
        rjob = next(r for r in runtime["spec"]["template"]["spec"]["replicatedJobs"]
                    if r["name"] == "node")
        trainer = spec.get("trainer") or {}
        pods = []
        for index in range(trainer.get("numNodes") or runtime["spec"]["mlPolicy"]["numNodes"]):
            pod_spec = copy.deepcopy(rjob["template"]["spec"]["template"]["spec"])
            node = next(c for c in pod_spec["containers"] if c["name"] == "node")
            node.update({k: v for k, v in (
                ("image", trainer.get("image")), ("command", trainer.get("command")),
                ("args", trainer.get("args")), ("resources", trainer.get("resourcesPerNode")),
            ) if v})
            for runtime_patch in spec.get("runtimePatches") or []:
                template = (runtime_patch.get("trainingRuntimeSpec") or {}).get("template") or {}
                for job_patch in (template.get("spec") or {}).get("replicatedJobs") or []:
                    if job_patch["name"] == "node":
                        _merge_pod_patch(pod_spec, job_patch["template"]["spec"]["template"]
                                         ["spec"])
            pod_spec["restartPolicy"] = "Never"
            pods.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{meta['name']}-node-0-{index}", "namespace":
                             meta["namespace"],
                             "labels": {"jobset.sigs.k8s.io/jobset-name": meta["name"],
                                        "jobset.sigs.k8s.io/replicatedjob-name": "node",
                                        "batch.kubernetes.io/job-completion-index": str(index)}},
                "spec": pod_spec,
            })
        return pods

    def reconcile(self, trainjob: dict[str, Any]) -> bool:
        meta = trainjob["metadata"]
        try:
            pods = self.node_pods(trainjob)
        except ValueError as exc:
            self._finish(meta, "Failed", str(exc))
            return False
        succeeded = True
        for pod in pods:
            self.double.put("v1", "pods", pod)
            self.pods.append(pod)
            logs, ok = self.program(pod)
            self.double.pod_logs[meta["namespace"], pod["metadata"]["name"], "node"] = logs
            self.double.set_status("v1", "pods", meta["namespace"], pod["metadata"]["name"],
                                   {"phase": "Succeeded" if ok else "Failed"})
            succeeded = succeeded and ok
        self._finish(meta, "Complete" if succeeded else "Failed",
                     "" if succeeded else "node-0 exited with code 1")
        return succeeded

    def _finish(self, meta: dict[str, Any], condition: str, message: str) -> None:
        self.double.set_status(TRAINER_API, "trainjobs", meta["namespace"], meta["name"], {
            "conditions": [{"type": condition, "status": "True", "message": message,
                            "reason": condition, "lastTransitionTime": "2025-01-01T00:00:00Z"}]})


def _spread(parameter: dict[str, Any], index: int, count: int) -> str:
    """A value of the feasible space, evenly spread over the trials (the stand-in's
    algorithm; Katib's own come from its suggestion services)."""
    space = parameter["feasibleSpace"]
    if parameter["parameterType"] == "categorical":
        return space["list"][index % len(space["list"])]
    low, high = float(space["min"]), float(space["max"])
    value = low + (high - low) * (index + 1) / (count + 1)
    return str(round(value)) if parameter["parameterType"] == "int" else f"{value:.6g}"


@dataclass
class Experiments:
    """Stand-in for Katib: an Experiment's trials get assignments from `_spread`, their
    TrainJob is the trial template with every `${trialParameters.*}` replaced (as Katib's
    trial controller does, including the `${trialSpec.Name}` metadata reference), and the
    objective is read from the primary pod's `name=value` stdout lines (the StdOut collector)."""

    double: KubeApiDouble
    trainjobs: TrainJobs

    def install(self) -> Experiments:
        self.double.on_write.append(self._hook)
        return self

    def _hook(self, plural: str, obj: dict[str, Any]) -> None:
        if plural == "experiments" and not obj.get("status"):
            self.reconcile(obj)

    def reconcile(self, experiment: dict[str, Any]) -> None:
        meta, spec = experiment["metadata"], experiment["spec"]
        template = spec["trialTemplate"]
        count = spec["maxTrialCount"]
        for index in range(count):
            trial_name = f"{meta['name']}-{index:04x}"
            assignments = {p["name"]: _spread(p, index, count) for p in spec["parameters"]}
            values = {"${trialSpec.Name}": trial_name, **assignments}
            text = json.dumps(template["trialSpec"])
            for parameter in template["trialParameters"]:
                text = text.replace(f"${{trialParameters.{parameter['name']}}}",
                                    values[parameter["reference"]])
            run_spec = json.loads(text)
            run_spec["metadata"] = {"name": trial_name, "namespace": meta["namespace"]}
            self.double.put(KATIB_API, "trials", {
                "apiVersion": KATIB_API, "kind": "Trial",
                "metadata": {"name": trial_name, "namespace": meta["namespace"],
                             "labels": {"katib.kubeflow.org/experiment": meta["name"]}},
                "spec": {"parameterAssignments": [{"name": k, "value": v}
                                                  for k, v in assignments.items()],
                         "runSpec": run_spec},
            })
            self.double.put(TRAINER_API, "trainjobs", run_spec)
            succeeded = self.trainjobs.reconcile(run_spec)
            self._observe(trial_name, meta["namespace"], template, spec, succeeded)
        self.double.set_status(KATIB_API, "experiments", meta["namespace"], meta["name"], {
            "conditions": [{"type": "Succeeded", "status": "True"}]})

    def _observe(self, trial: str, namespace: str, template: dict[str, Any],
                 spec: dict[str, Any], succeeded: bool) -> None:
        primary = next(
            p for p in self.trainjobs.pods
            if p["metadata"]["namespace"] == namespace
            and p["metadata"]["labels"]["jobset.sigs.k8s.io/jobset-name"] == trial
            and all(p["metadata"]["labels"].get(k) == v
                    for k, v in (template.get("primaryPodLabels") or {}).items()))
        logs = self.double.pod_logs[namespace, primary["metadata"]["name"],
                                    template["primaryContainerName"]]
        objective = spec["objective"]["objectiveMetricName"]
        found = re.findall(rf"^{re.escape(objective)}=(\S+)$", logs, re.MULTILINE)
        status: dict[str, Any] = {
            "startTime": "2025-01-01T00:00:00Z", "completionTime": "2025-01-01T00:00:07Z",
            "conditions": [{"type": "Succeeded" if succeeded else "Failed", "status": "True"}]}
        if found:
            status["observation"] = {"metrics": [{"name": objective, "latest": found[-1]}]}
        self.double.set_status(KATIB_API, "trials", namespace, trial, status)


def serve_notebooks(double: KubeApiDouble) -> None:
    """Stand-in for the notebook controller: a Notebook gets its pod `<name>-0` (the pod
    template it carries) and readyReplicas 1, as a StatefulSet of one would give it."""

    def hook(plural: str, obj: dict[str, Any]) -> None:
        if plural != "notebooks" or obj.get("status"):
            return
        meta = obj["metadata"]
        double.put("v1", "pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{meta['name']}-0", "namespace": meta["namespace"],
                         "labels": {"notebook-name": meta["name"]}},
            "spec": copy.deepcopy(obj["spec"]["template"]["spec"]),
        })
        double.set_status("kubeflow.org/v1", plural, meta["namespace"],
                          meta["name"], {"readyReplicas": 1})

    double.on_write.append(hook)
