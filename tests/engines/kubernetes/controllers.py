"""Stand-ins for the controllers of a real cluster, driving the API double's objects.

The double only stores objects; on a real cluster the API server serves a CRD's kind once it is
created, controllers mark Deployments Available, the Trainer and JobSet turn a TrainJob into
Pods, Katib turns an Experiment into Trials, KServe an InferenceService into a predictor, the
notebook controller a Notebook into a pod. These hooks do that much, with the upstream
behaviour kfbox depends on written as rules (each naming its repository, tag and file), so
readiness gates and the platform's waits pass, time out, or fail as they would there. They act
on the stored objects synchronously, inside the request that wrote them.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import upstream
import yaml
from kapi_double import Denied, KubeApiDouble
from webhooks import KATIB_API, TRAINER_API, katib_config


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


REPLICASET_CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"
"""Who creates a Deployment's pods (kubernetes/kubernetes v1.32
pkg/controller/replicaset/replica_set.go runs as this service account under kind)."""
CONTROLLER_LAG_S = 0.2
"""How long after a Deployment is written its pod is created: on a real cluster the deployment
and ReplicaSet controllers' watches and syncs take tens to hundreds of milliseconds, while a
client's next request follows in a few."""


def _endpoints(double: KubeApiDouble, service: dict[str, Any]) -> None:
    """The endpoints controller: a Service's Endpoints list the pods its selector matches."""
    meta = service["metadata"]
    selector = (service.get("spec") or {}).get("selector") or {}
    pods = [o.raw for key, o in list(double.objects.items())
            if key[0].plural == "pods" and key[1] == meta.get("namespace") and not o.deleted]
    if selector and any(all((p["metadata"].get("labels") or {}).get(k) == v
                            for k, v in selector.items()) for p in pods):
        double.put("v1", "endpoints", {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace")},
            "subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]})


def run_workloads(double: KubeApiDouble, lag_s: float = CONTROLLER_LAG_S) -> None:
    """Deployments get their pod a little after they are written (through admission, as the
    ReplicaSet controller, retried while refused) and become Available once it exists;
    DaemonSets become ready; Services get Endpoints once a pod they select exists."""
    waiting: dict[tuple[str | None, str], float] = {}

    def hook(plural: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if plural == "deployments" and not obj.get("status"):
            waiting.setdefault((meta.get("namespace"), meta["name"]), time.monotonic())
        elif plural == "daemonsets" and not obj.get("status"):
            double.set_status("apps/v1", plural, meta.get("namespace"), meta["name"],
                              {"desiredNumberScheduled": 1, "numberReady": 1})
        elif plural == "services":
            _endpoints(double, obj)

    def reconcile() -> None:
        for (namespace, name), since in list(waiting.items()):
            deployment = double.get("apps/v1", "deployments", namespace, name)
            if deployment is None:
                waiting.pop((namespace, name))
                continue
            if time.monotonic() - since < lag_s:
                continue
            template = deployment["spec"]["template"]
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"{name}-0", "namespace": namespace,
                                "labels": dict((template.get("metadata") or {})
                                               .get("labels") or {})},
                   "spec": copy.deepcopy(template["spec"])}
            try:
                double.create("v1", "pods", pod, user=REPLICASET_CONTROLLER)
            except Denied as refused:
                # pkg/controller/deployment/sync.go: a ReplicaSet that cannot create its pods
                # gives the Deployment a ReplicaFailure condition, and it is not Available.
                double.set_status("apps/v1", "deployments", namespace, name, {"conditions": [
                    {"type": "Available", "status": "False"},
                    {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                     "message": refused.message}]})
                double.refused.append((f"{namespace}/{pod['metadata']['name']}",
                                       refused.message))
                continue
            waiting.pop((namespace, name))
            double.set_status("apps/v1", "deployments", namespace, name,
                              {"conditions": [{"type": "Available", "status": "True"}]})
            for key, service in list(double.objects.items()):
                if key[0].plural == "services" and key[1] == namespace and not service.deleted:
                    _endpoints(double, service.raw)

    double.on_write.append(hook)
    double.after_request.append(reconcile)


# ---- Kubeflow Trainer v2.3.0 + JobSet + the kubelet ---------------------------------------

Run = tuple[str, bool]
"""A node container's output and whether it exited 0."""
Kubelet = Callable[[list[dict[str, Any]]], list[Run]]
"""Runs a job's node Pods together (they rendezvous), returning each one's Run."""
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


def each(program: Callable[[dict[str, Any]], Run]) -> Kubelet:
    """A kubelet running `program` for every Pod in turn (for programs that need no peers)."""
    return lambda pods: [program(pod) for pod in pods]


def _merge_pod_patch(pod_spec: dict[str, Any], patch: dict[str, Any]) -> None:
    """A runtime patch merged into the pod spec (the Trainer applies it over the runtime's
    template; containers are matched by name)."""
    pod_spec.setdefault("volumes", []).extend(patch.get("volumes") or [])
    for container_patch in patch.get("containers") or []:
        target = next(c for c in pod_spec["containers"] if c["name"] == container_patch["name"])
        for key in ("env", "volumeMounts"):
            target.setdefault(key, []).extend(container_patch.get(key) or [])


def _cpu_count(quantity: Any) -> int:
    """resource.Quantity.Value(): the quantity rounded up to a whole number."""
    text = str(quantity)
    value = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    return int(-(-value // 1))


def torch_env(trainjob: dict[str, Any], num_nodes: int) -> list[dict[str, Any]]:
    """What the torch plugin adds to the node container (kubeflow/trainer v2.3.0
    pkg/runtime/framework/plugins/torch/torch.go, EnforceMLPolicy): PET_NNODES,
    PET_NPROC_PER_NODE (numProcPerNode, else "auto" with a GPU, else the CPU count), the node
    rank from the Job's completion index, node 0's address and port."""
    facts = upstream.component("trainer")
    trainer = trainjob["spec"].get("trainer") or {}
    limits = (trainer.get("resourcesPerNode") or {}).get("limits") or {}
    requests = (trainer.get("resourcesPerNode") or {}).get("requests") or {}
    nproc = trainer.get("numProcPerNode")
    if nproc is None:
        gpus = int(limits.get("nvidia.com/gpu", 0))
        cpus = requests.get("cpu") or limits.get("cpu")
        nproc = "auto" if gpus else max(1, _cpu_count(cpus) if cpus else 0)
    name = trainjob["metadata"]["name"]
    return [
        {"name": "PET_NNODES", "value": str(num_nodes)},
        {"name": "PET_NPROC_PER_NODE", "value": str(nproc)},
        {"name": "PET_NODE_RANK", "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}},
        {"name": "PET_MASTER_ADDR", "value": f"{name}-{facts['node']}-0-0.{name}"},
        {"name": "PET_MASTER_PORT", "value": str(facts["master_port"])},
    ]


@dataclass
class TrainJobs:
    """Stand-in for the Trainer, JobSet and the kubelet: a TrainJob's node Pods are rendered
    from its ClusterTrainingRuntime, its trainer fields (image, command, args, resources, env),
    the torch plugin's env and its runtimePatches, labelled as JobSet labels them; `kubelet`
    runs them, then the TrainJob gets a Complete or Failed condition."""

    double: KubeApiDouble
    kubelet: Kubelet
    pods: list[dict[str, Any]] = field(default_factory=list)
    pod_webhooks: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    """Mutating admission of each node Pod as it is created (Katib's collector injection)."""

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
        rjob = next(r for r in runtime["spec"]["template"]["spec"]["replicatedJobs"]
                    if r["name"] == "node")
        trainer = spec.get("trainer") or {}
        num_nodes = trainer.get("numNodes") or runtime["spec"]["mlPolicy"]["numNodes"]
        pods = []
        for index in range(num_nodes):
            pod_spec = copy.deepcopy(rjob["template"]["spec"]["template"]["spec"])
            node = next(c for c in pod_spec["containers"] if c["name"] == "node")
            node.update({k: v for k, v in (
                ("image", trainer.get("image")), ("command", trainer.get("command")),
                ("args", trainer.get("args")), ("resources", trainer.get("resourcesPerNode")),
            ) if v})
            node["env"] = [*(trainer.get("env") or []), *torch_env(trainjob, num_nodes)]
            node["ports"] = [{"containerPort": upstream.component("trainer")["master_port"]}]
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
                             "annotations": {COMPLETION_INDEX: str(index)},
                             "labels": {"jobset.sigs.k8s.io/jobset-name": meta["name"],
                                        "jobset.sigs.k8s.io/replicatedjob-name": "node",
                                        COMPLETION_INDEX: str(index)}},
                "spec": pod_spec,
            })
        return pods

    def reconcile(self, trainjob: dict[str, Any]) -> bool:
        meta = trainjob["metadata"]
        pods = self.node_pods(trainjob)
        for pod in pods:
            for webhook in self.pod_webhooks:
                webhook(pod)
            self.double.put("v1", "pods", pod)
            self.pods.append(pod)
        runs = self.kubelet(pods)
        collector = upstream.component("katib")["metrics_collector_container"]
        for pod, (logs, ok) in zip(pods, runs, strict=True):
            names = [c["name"] for c in pod["spec"]["containers"]]
            # Katib's wrapper sends the primary container's output to its metrics file, which
            # only the collector sidecar echoes (pkg/webhook/v1beta1/pod/utils.go at v0.19.0).
            self.double.pod_logs[meta["namespace"], pod["metadata"]["name"], "node"] = \
                "" if collector in names else logs
            if collector in names:
                self.double.pod_logs[meta["namespace"], pod["metadata"]["name"], collector] = logs
            self.double.set_status("v1", "pods", meta["namespace"], pod["metadata"]["name"],
                                   {"phase": "Succeeded" if ok else "Failed"})
        succeeded = all(ok for _, ok in runs)
        self.double.set_status(TRAINER_API, "trainjobs", meta["namespace"], meta["name"], {
            "conditions": [{"type": "Complete" if succeeded else "Failed", "status": "True",
                            "message": "" if succeeded else "node-0 exited with code 1",
                            "reason": "Complete" if succeeded else "Failed",
                            "lastTransitionTime": "2025-01-01T00:00:00Z"}]})
        return succeeded


# ---- Katib v0.19.0 ----------------------------------------------------------------------------


def _spread(parameter: dict[str, Any], index: int, count: int) -> str:
    """A value of the feasible space, evenly spread over the trials (the stand-in's
    algorithm; Katib's own come from its suggestion services)."""
    space = parameter["feasibleSpace"]
    if parameter["parameterType"] == "categorical":
        return space["list"][index % len(space["list"])]
    low, high = float(space["min"]), float(space["max"])
    value = low + (high - low) * (index + 1) / (count + 1)
    return str(round(value)) if parameter["parameterType"] == "int" else f"{value:.6g}"


def katib_runs(double: KubeApiDouble, kind: str, group_version: str) -> str | None:
    """Why Katib's controller cannot run trials of this kind; None when it can.

    kubeflow/katib v0.19.0: cmd/katib-controller/v1beta1/main.go and pkg/controller.v1beta1/
    trial/trial_controller.go watch only the kinds katib-config lists in trialResources (a
    trial of another kind never completes); the controller creates the trial's object with its
    ClusterRole (manifests/v1beta1/components/controller/rbac.yaml)."""
    group, _, version = group_version.rpartition("/")
    resource = f"{kind}.{version}.{group}"
    trials = ((katib_config(double).get("init") or {}).get("controller") or {}) \
        .get("trialResources") or []
    if resource not in trials:
        return f"{resource} is not in katib-config trialResources"
    role = double.get("rbac.authorization.k8s.io/v1", "clusterroles", None,
                      upstream.component("katib")["controller_cluster_role"]) or {}
    plural = kind.lower() + "s"
    if not any(group in r.get("apiGroups", []) and plural in r.get("resources", []) and
               "create" in r.get("verbs", []) for r in role.get("rules") or []):
        return f"katib-controller may not create {plural}.{group}"
    return None


def optimal_trial(double: KubeApiDouble, namespace: str, experiment: dict[str, Any],
                  names: list[str]) -> dict[str, Any]:
    """status.currentOptimalTrial as Katib v0.19.0's experiment controller writes it
    (pkg/controller.v1beta1/experiment/util/status_util.go updateTrialsSummary): the trial
    whose objective metric's latest value is best in the objective's direction, with its
    parameter assignments and observation; empty while no trial has the metric."""
    objective = experiment["spec"]["objective"]
    best, best_value = None, None
    for name in names:
        trial = double.get(KATIB_API, "trials", namespace, name) or {}
        metrics = ((trial.get("status") or {}).get("observation") or {}).get("metrics") or []
        value = next((m["latest"] for m in metrics
                      if m["name"] == objective["objectiveMetricName"]), None)
        if value is None or value == UNAVAILABLE_METRIC:
            continue
        better = best_value is None or (float(value) > best_value
                                        if objective["type"] == "maximize"
                                        else float(value) < best_value)
        if better:
            best, best_value = trial, float(value)
    if best is None:
        return {}
    return {"bestTrialName": best["metadata"]["name"],
            "parameterAssignments": best["spec"]["parameterAssignments"],
            "observation": best["status"]["observation"]}


UNAVAILABLE_METRIC = "unavailable"
"""pkg/controller.v1beta1/consts/const.go UnavailableMetricValue at v0.19.0."""


@dataclass
class Experiments:
    """Stand-in for Katib: an Experiment's trials get assignments from `_spread`, their
    TrainJob is the trial template with every `${trialParameters.*}` replaced (as Katib's
    trial controller does, including the `${trialSpec.Name}` metadata reference) and is created
    through admission, and the objective is read from the primary pod's `name=value` lines by
    the StdOut collector, which Katib injects only in labelled namespaces."""

    double: KubeApiDouble
    trainjobs: TrainJobs

    def install(self) -> Experiments:
        self.double.on_write.append(self._hook)
        self.trainjobs.pod_webhooks.append(self._inject)
        return self

    def _inject(self, pod: dict[str, Any]) -> None:
        """Katib's pod mutator (pkg/webhook/v1beta1/pod/inject_webhook.go, utils.go): in a
        labelled namespace, a trial's primary pod gets the collector sidecar and its primary
        container's output goes to the metrics file."""
        meta = pod["metadata"]
        trial = self.double.get(KATIB_API, "trials", meta["namespace"],
                                meta["labels"]["jobset.sigs.k8s.io/jobset-name"])
        experiment = trial and self.double.get(
            KATIB_API, "experiments", meta["namespace"],
            trial["metadata"]["labels"]["katib.kubeflow.org/experiment"])
        if not experiment or not self._injected(meta["namespace"]):
            return
        template = experiment["spec"]["trialTemplate"]
        if not all(meta["labels"].get(k) == v
                   for k, v in (template.get("primaryPodLabels") or {}).items()):
            return
        facts = upstream.component("katib")
        primary = next(c for c in pod["spec"]["containers"]
                       if c["name"] == template["primaryContainerName"])
        # wrapWorkerContainer: a command that starts `sh -c` or `bash -c` keeps that shell and
        # its script gets the redirect and the completion mark appended; any other becomes
        # `sh -c` of the whole command line joined by spaces.
        argv = [*(primary.get("command") or []), *(primary.get("args") or [])]
        shell, argv = (argv[:2], argv[2:]) if argv[0] in ("sh", "bash") and argv[1] == "-c" \
            else (["sh", "-c"], argv)
        folder = facts["metrics_file"].rpartition("/")[0]
        primary["command"] = shell
        primary["args"] = [" ".join([*argv, f"1>{facts['metrics_file']} 2>&1",
                                     "&&", f"echo completed > {folder}/$$$$.pid"])]
        # mutateMetricsCollectorVolume: an emptyDir at the metrics file's folder, mounted in
        # the primary container and the sidecar.
        mount = {"name": "metrics-volume", "mountPath": folder}
        primary.setdefault("volumeMounts", []).append(dict(mount))
        pod["spec"]["containers"].append({
            "name": facts["metrics_collector_container"],
            "image": "ghcr.io/kubeflow/katib/file-metrics-collector:v0.19.0",
            "volumeMounts": [dict(mount)]})
        pod["spec"].setdefault("volumes", []).append({"name": "metrics-volume", "emptyDir": {}})

    def _injected(self, namespace: str) -> bool:
        """The pod mutator's namespaceSelector: only labelled namespaces."""
        labels = (self.double.get("v1", "namespaces", None, namespace) or {}).get(
            "metadata", {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in
                   upstream.component("katib")["metrics_collector_label"].items())

    def _hook(self, plural: str, obj: dict[str, Any]) -> None:
        if plural == "experiments" and not obj.get("status"):
            self.reconcile(obj)

    def reconcile(self, experiment: dict[str, Any]) -> None:
        meta, spec = experiment["metadata"], experiment["spec"]
        template = spec["trialTemplate"]
        if katib_runs(self.double, template["trialSpec"]["kind"],
                      template["trialSpec"]["apiVersion"]):
            return  # no trial ever completes: the Experiment stays running
        count = spec["maxTrialCount"]
        # As Katib keeps parallelTrialCount trials running: each batch's TrainJobs run together.
        parallel = max(1, spec.get("parallelTrialCount") or 1)
        for first in range(0, count, parallel):
            started = [trial for index in range(first, min(first + parallel, count))
                       if (trial := self._start_trial(experiment, index, count))]
            with ThreadPoolExecutor(len(started) or 1) as pool:
                results = list(pool.map(lambda t: self.trainjobs.reconcile(t[1]), started))
            for (trial_name, _), succeeded in zip(started, results, strict=True):
                self._observe(trial_name, meta["namespace"], template, spec, succeeded)
        trials = [f"{meta['name']}-{index:04x}" for index in range(count)]
        self.double.set_status(KATIB_API, "experiments", meta["namespace"], meta["name"], {
            "conditions": [{"type": "Succeeded", "status": "True"}],
            "trials": count,
            "currentOptimalTrial": optimal_trial(self.double, meta["namespace"], experiment,
                                                 trials)})

    def _start_trial(self, experiment: dict[str, Any], index: int,
                     count: int) -> tuple[str, dict[str, Any]] | None:
        """The trial and its TrainJob (the template with every `${trialParameters.*}`
        replaced), created through admission; None when refused (the trial failed)."""
        meta, spec = experiment["metadata"], experiment["spec"]
        template = spec["trialTemplate"]
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
        try:
            self.double.create(TRAINER_API, "trainjobs", run_spec)
        except Denied as denied:
            # A real Katib retries the create and the trial never runs; the stand-in fails it
            # with the refusal, so a test sees why.
            self._finish(trial_name, meta["namespace"], False, denied.message)
            return None
        return trial_name, run_spec

    def _finish(self, trial: str, namespace: str, succeeded: bool, message: str = "",
                observation: dict[str, Any] | None = None) -> None:
        status: dict[str, Any] = {
            "startTime": "2025-01-01T00:00:00Z", "completionTime": "2025-01-01T00:00:07Z",
            "conditions": [{"type": "Succeeded" if succeeded else "Failed", "status": "True",
                            "message": message}]}
        if observation:
            status["observation"] = observation
        self.double.set_status(KATIB_API, "trials", namespace, trial, status)

    def _observe(self, trial: str, namespace: str, template: dict[str, Any],
                 spec: dict[str, Any], succeeded: bool) -> None:
        # The collector sidecar (injected only into the primary pod of a labelled namespace,
        # _inject) reads the metrics file and reports the objective and
        # additionalMetricNames, nothing else (file-metricscollector at v0.19.0).
        collector = upstream.component("katib")["metrics_collector_container"]
        primary = next(
            (p for p in self.trainjobs.pods
             if p["metadata"]["namespace"] == namespace
             and p["metadata"]["labels"]["jobset.sigs.k8s.io/jobset-name"] == trial
             and any(c["name"] == collector for c in p["spec"]["containers"])), None)
        logs = "" if primary is None else \
            self.double.pod_logs[namespace, primary["metadata"]["name"], collector]
        names = [spec["objective"]["objectiveMetricName"],
                 *(spec["objective"].get("additionalMetricNames") or [])]
        # Each metric with its min, max and latest as Katib's trial controller reports them
        # (pkg/controller.v1beta1/trial/trial_controller_util.go getMetrics at v0.19.0).
        metrics = []
        for name in names:
            found = re.findall(rf"^{re.escape(name)}=(\S+)$", logs, re.MULTILINE)
            if found:
                values = [float(v) for v in found]
                metrics.append({"name": name, "latest": found[-1],
                                "min": found[values.index(min(values))],
                                "max": found[values.index(max(values))]})
        self._finish(trial, namespace, succeeded,
                     observation={"metrics": metrics} if metrics else None)


# ---- KServe v0.20.0 ---------------------------------------------------------------------------


def kserve_config(double: KubeApiDouble) -> dict[str, Any] | None:
    namespace, name = upstream.component("kserve")["config"]["name"].split("/")
    config = double.get("v1", "configmaps", namespace, name)
    return None if config is None else config.get("data") or {}


def _fqdn(domain: str) -> bool:
    """k8s.io/apimachinery validation.IsFullyQualifiedDomainName: two labels at least, each a
    DNS-1123 label of at most 63 characters, 253 in all."""
    labels = domain.split(".")
    return len(labels) >= 2 and len(domain) <= 253 and all(
        re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", label) and len(label) <= 63
        for label in labels)


def inference_service_url(double: KubeApiDouble, isvc: dict[str, Any]) -> tuple[str, str, str]:
    """(url, mode, "") for an InferenceService KServe serves as a Standard (raw) Deployment,
    or ("", mode, why) when it does not.

    kserve/kserve v0.20.0: pkg/apis/serving/v1beta1/configmap.go (NewDeployConfig: a deploy
    key must name a defaultDeploymentMode, the aliases RawDeployment and Serverless become
    Standard and Knative, anything but Knative, Standard or ModelMesh is invalid;
    NewIngressConfig: an ingress key must be JSON with an ingressGateway, with
    enableGatewayApi a kserveIngressGateway too, a pathTemplate needs an ingressDomain; an
    absent key means the defaults); pkg/controller/v1beta1/inferenceservice/utils/utils.go
    (GetDeploymentMode: the mode recorded in the status, then the annotation when it names a
    mode after normalising, else the config's default; Knative needs Knative, absent here);
    reconcilers/ingress/domain.go (GenerateDomainName: the domain template's result must be a
    fully qualified domain name)."""
    facts = upstream.component("kserve")
    aliases, modes = facts["deployment_mode_aliases"], facts["deployment_modes"]
    data = kserve_config(double)
    if data is None:
        return "", "", "unable to get configmap kserve/inferenceservice-config"
    try:
        deploy = json.loads(data["deploy"]) if "deploy" in data else {}
        ingress = json.loads(data["ingress"]) if "ingress" in data else {}
    except json.JSONDecodeError as exc:
        return "", "", f"unable to parse config json: {exc}"
    default_mode = deploy.get("defaultDeploymentMode") or ""
    default_mode = aliases.get(default_mode, default_mode)
    if "deploy" in data and not default_mode:
        return "", "", "invalid deploy config, defaultDeploymentMode is required"
    if "deploy" in data and default_mode not in modes:
        return "", "", ("invalid deployment mode. Supported modes are Knative, Standard and "
                         "ModelMesh")
    if "ingress" in data:
        if ingress.get("enableGatewayApi") and not ingress.get("kserveIngressGateway"):
            return "", "", "invalid ingress config - kserveIngressGateway is required"
        if not ingress.get("ingressGateway"):
            return "", "", "invalid ingress config - ingressGateway is required"
        if ingress.get("pathTemplate") and not ingress.get("ingressDomain"):
            return "", "", ("invalid ingress config - ingressDomain is required if "
                            "pathTemplate is given")
    recorded = (isvc.get("status") or {}).get("deploymentMode")
    annotated = (isvc["metadata"].get("annotations") or {}).get(
        facts["deployment_mode_annotation"], "")
    annotated = aliases.get(annotated, annotated)
    mode = (aliases.get(recorded, recorded) if recorded
            else annotated if annotated in modes else default_mode)
    if mode != facts["default_deployment_mode"]:
        return "", mode, f"deployment mode {mode}: no Knative Service kind is served here"
    template = ingress.get("domainTemplate") or facts["default_domain_template"]
    domain = (template.replace("{{ .Name }}", isvc["metadata"]["name"])
              .replace("{{ .Namespace }}", isvc["metadata"]["namespace"])
              .replace("{{ .IngressDomain }}",
                       ingress.get("ingressDomain") or facts["default_ingress_domain"]))
    if not _fqdn(domain):
        return "", mode, f'invalid domain name "{domain}"'
    return f"{ingress.get('urlScheme') or 'http'}://{domain}", mode, ""


SUFFIXES = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text: str) -> float:
    """A resource.Quantity's value (k8s.io/apimachinery pkg/api/resource/quantity.go)."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text))
    if match is None or (match.group(2) and match.group(2) not in SUFFIXES):
        raise ValueError(f"quantities must match the regular expression: {text!r}")
    return float(match.group(1)) * SUFFIXES.get(match.group(2), 1)


def requests_over_limits(container: dict[str, Any]) -> list[str]:
    """kubernetes/kubernetes v1.32 pkg/apis/core/validation/validation.go
    (ValidateResourceRequirements): a request above its limit is invalid, so a Deployment whose
    pod template has one is refused."""
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    return [f"spec.template.spec.containers[0].resources.requests: Invalid value: "
            f'"{requests[name]}": must be less than or equal to {name} limit of {limit}'
            for name, limit in limits.items()
            if name in requests and quantity(requests[name]) > quantity(limit)]


def serve_inference_services(double: KubeApiDouble) -> None:
    """Stand-in for KServe v0.20.0's controller: a Standard InferenceService gets its predictor
    Service (`<name>-predictor`, port 80; constants.go PredictorServiceName) and Ready with its
    URL; one KServe cannot serve gets Ready False with the reason. Either way the status
    records the deployment mode it resolved (controller.go: Status.DeploymentMode)."""
    suffix = upstream.component("kserve")["predictor_service_suffix"]

    def hook(plural: str, obj: dict[str, Any]) -> None:
        if plural != "inferenceservices" or obj.get("status"):
            return
        meta = obj["metadata"]
        url, mode, why = inference_service_url(double, obj)
        if not why:
            # The predictor Deployment (pkg/controller/v1beta1/inferenceservice/reconcilers/
            # raw): the API server refuses its pod template, and KServe reports why.
            refused = [found for container in obj["spec"]["predictor"].get("containers") or []
                       for found in requests_over_limits(container)]
            if refused:
                why = (f'Deployment.apps "{meta["name"]}-predictor" is invalid: '
                       + "; ".join(refused))
        if why:
            status = {"conditions": [{"type": "Ready", "status": "False", "message": why}]}
            if mode:
                status["deploymentMode"] = mode
        else:
            double.put("v1", "services", {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": meta["name"] + suffix, "namespace": meta["namespace"]},
                "spec": {"ports": [{"port": 80, "targetPort": 8080}]}})
            # The address inside the cluster: the predictor Service's name in cluster DNS
            # (reconcilers/ingress/kube_ingress_reconciler.go createAddress, httproute_reconciler.go
            # getRawServiceHost, constants.go PredictorServiceName; knative's
            # network.GetServiceHostname adds `.<namespace>.svc.cluster.local`).
            address = f"http://{meta['name']}{suffix}.{meta['namespace']}.svc.cluster.local"
            status = {"url": url, "deploymentMode": mode, "address": {"url": address},
                      "conditions": [{"type": "Ready", "status": "True"}]}
        double.set_status("serving.kserve.io/v1beta1", plural, meta["namespace"], meta["name"],
                          status)

    double.on_write.append(hook)


# ---- the notebook controller (kubeflow/kubeflow v1.10.0) -----------------------------------


def serve_notebooks(double: KubeApiDouble) -> None:
    """Stand-in for the notebook controller (components/notebook-controller/controllers/
    notebook_controller.go): a Notebook gets a StatefulSet of one (pod `<name>-0`, labelled
    statefulset and notebook-name) whose container gets NB_PREFIX=/notebook/<ns>/<name>, a
    Service named as the Notebook (port 80 to 8888), and readyReplicas 1."""
    facts = upstream.component("notebook-controller")

    def hook(plural: str, obj: dict[str, Any]) -> None:
        if plural != "notebooks" or obj.get("status"):
            return
        meta = obj["metadata"]
        pod_spec = copy.deepcopy(obj["spec"]["template"]["spec"])
        pod_spec["containers"][0].setdefault("env", []).append(
            {"name": facts["prefix_env"],
             "value": f"/notebook/{meta['namespace']}/{meta['name']}"})
        double.put("v1", "pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{meta['name']}-0", "namespace": meta["namespace"],
                         "labels": {"statefulset": meta["name"], "notebook-name": meta["name"]}},
            "spec": pod_spec,
        })
        double.put("v1", "services", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "spec": {"selector": {"statefulset": meta["name"]},
                     "ports": [{"port": facts["serving_port"],
                                "targetPort": facts["container_port"]}]}})
        double.set_status("kubeflow.org/v1", plural, meta["namespace"],
                          meta["name"], {"readyReplicas": 1})

    double.on_write.append(hook)


def installed_configs(double: KubeApiDouble) -> None:
    """What the core platform's install leaves that controllers read, from the upstream facts:
    katib-config (trial resources, suggestions), the katib-controller ClusterRole's rules, and
    KServe's inferenceservice-config with Standard as its default (as kfbox installs it)."""
    katib = upstream.component("katib")
    namespace, name = katib["config"]["name"].split("/")
    double.put("v1", "configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name,
                                                            "namespace": namespace},
        "data": {katib["config"]["key"]: yaml.safe_dump({
            "init": {"controller": {"trialResources": katib["trial_resources"]}},
            "runtime": {"suggestions": [{"algorithmName": a}
                                        for a in katib["suggestion_algorithms"]]}})}})
    double.put("rbac.authorization.k8s.io/v1", "clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": katib["controller_cluster_role"]}, "rules": katib["controller_rbac"]})
    kserve = upstream.component("kserve")
    namespace, name = kserve["config"]["name"].split("/")
    double.put("v1", "configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name,
                                                            "namespace": namespace},
        "data": {"deploy": json.dumps({"defaultDeploymentMode": kserve["default_deployment_mode"]}),
                 kserve["resource_defaults"]["key"]: json.dumps({"resource": {
                     "cpuRequest": kserve["resource_defaults"]["requests"]["cpu"],
                     "memoryRequest": kserve["resource_defaults"]["requests"]["memory"],
                     "cpuLimit": kserve["resource_defaults"]["limits"]["cpu"],
                     "memoryLimit": kserve["resource_defaults"]["limits"]["memory"]}})}})
