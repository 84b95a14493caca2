"""Tuning as a Katib Experiment whose trials are TrainJobs running the journey's image under
torch's launcher, each saving its model under its own store key."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubeflow_katib_api import models as katib
from kubeflow_trainer_api import models as trainer

from kfbox.engines.kubernetes import capacity
from kfbox.engines.kubernetes.kubeapi import KubeApi, KubeError
from kfbox.engines.kubernetes.storemount import NODE, model_dir_env, runtime_patch
from kfbox.engines.kubernetes.training import (
    KubeTraining,
    joined,
    launch_command,
    node_resources,
)
from kfbox.engines.metrics import parse_metrics
from kfbox.engines.platform import Experiment, StepFailure, Trial, TuneResult

KATIB_API = "kubeflow.org/v1beta1"
ALGORITHMS = {"random": "random", "tpe": "tpe"}
TRIAL_NAME = "kfboxTrialName"
"""Trial parameter Katib fills with the trial's name (`${trialSpec.Name}`): each trial saves
under <model_key>/<trial name>, so the best trial's model can be found and served."""
# A TrainJob reports Complete/Failed conditions; Katib's defaults expect other kinds' names.
SUCCESS = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
FAILURE = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
COLLECTOR = "metrics-logger-and-collector"
"""Katib v0.19.0's StdOut collector sidecar (pkg/metricscollector/v1beta1/common/const.go):
its wrapper (pkg/webhook/v1beta1/pod/utils.go) sends the primary container's output to
/var/log/katib/metrics.log, and only this sidecar echoes it."""
PRIMARY_POD = {"jobset.sigs.k8s.io/replicatedjob-name": NODE,
               "batch.kubernetes.io/job-completion-index": "0"}
"""Only node 0's metrics count (every node of a multi-node trial prints them)."""


def trial_model_key(exp: Experiment, trial_name: str) -> str:
    return f"{exp.trial.model_key}/{trial_name}"


def _parameter(p: Any) -> katib.V1beta1ParameterSpec:
    if p.type == "categorical":
        space = katib.V1beta1FeasibleSpace(list=list(p.values))
    else:
        space = katib.V1beta1FeasibleSpace(
            min=str(p.min), max=str(p.max),
            distribution="logUniform" if p.log else "uniform")
    return katib.V1beta1ParameterSpec(name=p.name, parameterType=p.type, feasibleSpace=space)


def experiment_object(exp: Experiment, namespace: str, training: KubeTraining) -> dict[str, Any]:
    """The Katib Experiment, built with Katib's and the Trainer's typed models. Each trial is
    a TrainJob of the journey's image; trial parameters reach it as --name=value args, and the
    StdOut collector reads its `name=value` metric lines."""
    job = exp.trial
    fixed = [f"--{k}={v}" for k, v in job.args.items() if k not in {p.name for p in
                                                                       exp.parameters}]
    tuned = [f"--{p.name}=${{trialParameters.{p.name}}}" for p in exp.parameters]
    quantities = {("nvidia.com/gpu" if k == "gpu" else k): v
                  for k, v in node_resources(job.gpus, **training.resources).items()}
    model_dir = model_dir_env(trial_model_key(exp, f"${{trialParameters.{TRIAL_NAME}}}"))
    train_spec = trainer.TrainerV1alpha1TrainJobSpec(
        runtimeRef=trainer.TrainerV1alpha1RuntimeRef(name=training.runtime(job.gpus),
                                                     kind="ClusterTrainingRuntime"),
        trainer=trainer.TrainerV1alpha1Trainer(
            image=job.image, command=launch_command(job.command, job.gpus),
            args=fixed + tuned, numNodes=job.num_nodes,
            env=[trainer.IoK8sApiCoreV1EnvVar(name=k, value=v) for k, v in model_dir.items()],
            resourcesPerNode=trainer.IoK8sApiCoreV1ResourceRequirements.from_dict(
                {"requests": quantities, "limits": quantities})),
        runtimePatches=[runtime_patch()],
    )
    spec = katib.V1beta1ExperimentSpec(
        parameters=[_parameter(p) for p in exp.parameters],
        objective=katib.V1beta1ObjectiveSpec(objectiveMetricName=exp.objective,
                                             type=exp.goal),
        algorithm=katib.V1beta1AlgorithmSpec(
            algorithmName=ALGORITHMS[exp.algorithm],
            algorithmSettings=[katib.V1beta1AlgorithmSetting(name="random_state",
                                                             value=str(exp.seed))]),
        maxTrialCount=exp.max_trials, parallelTrialCount=exp.parallel_trials,
        maxFailedTrialCount=exp.max_trials,
        metricsCollectorSpec=katib.V1beta1MetricsCollectorSpec(
            collector=katib.V1beta1CollectorSpec(kind="StdOut")),
        trialTemplate=katib.V1beta1TrialTemplate(
            primaryContainerName=NODE, primaryPodLabels=PRIMARY_POD, retain=True,
            successCondition=SUCCESS, failureCondition=FAILURE,
            trialParameters=[
                *(katib.V1beta1TrialParameterSpec(name=p.name, reference=p.name)
                  for p in exp.parameters),
                katib.V1beta1TrialParameterSpec(name=TRIAL_NAME, reference="${trialSpec.Name}"),
            ],
            trialSpec={"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
                       "spec": train_spec.to_dict()},
        ),
    )
    experiment = katib.V1beta1Experiment(
        apiVersion=KATIB_API, kind="Experiment",
        metadata=katib.IoK8sApimachineryPkgApisMetaV1ObjectMeta(name=exp.name,
                                                                namespace=namespace),
        spec=spec,
    )
    return experiment.to_dict()


def _trial(obj: dict[str, Any], exp: Experiment) -> Trial:
    status = obj.get("status") or {}
    metrics = {m["name"]: float(m["latest"]) for m in
               (status.get("observation") or {}).get("metrics") or [] if "latest" in m}
    succeeded = any(c.get("type") == "Succeeded" and c.get("status") == "True"
                    for c in status.get("conditions") or [])
    params = {a["name"]: str(a["value"]) for a in obj["spec"].get("parameterAssignments", [])}
    name = obj["metadata"]["name"]
    return Trial(name, params, metrics, succeeded, trial_model_key(exp, name), _duration(status))


def _duration(status: dict[str, Any]) -> float:
    """Seconds from the trial's start to its completion, as Katib records them (0 if unknown)."""
    try:
        start, end = (datetime.fromisoformat(status[k].replace("Z", "+00:00"))
                      for k in ("startTime", "completionTime"))
    except (KeyError, AttributeError, ValueError):
        return 0.0
    return (end - start).total_seconds()


@dataclass
class KubeTuning:
    kube: KubeApi
    namespace: str
    training: KubeTraining
    poll_s: float = 5

    def run(self, experiment: Experiment) -> TuneResult:
        capacity.require(self.kube, f"Experiment {experiment.name}",
                         experiment.parallel_trials * experiment.trial.num_nodes,
                         self.training.resources)
        self.training.require_store(f"Experiment {experiment.name}",
                                    experiment.parallel_trials * experiment.trial.num_nodes)
        started = time.monotonic()
        try:
            self.kube.apply(experiment_object(experiment, self.namespace, self.training))
        except KubeError as exc:
            raise StepFailure(f"Experiment {experiment.name} refused: {exc}") from exc
        deadline = started + experiment.trial.timeout_s * experiment.max_trials
        while True:
            obj = self.kube.get(KATIB_API, "Experiment", experiment.name, self.namespace) or {}
            conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])
                          if c.get("status") == "True"}
            if "Succeeded" in conditions or "Failed" in conditions:
                break
            if time.monotonic() > deadline:
                raise StepFailure(f"Experiment {experiment.name} did not finish in time")
            time.sleep(self.poll_s)
        trials = [_trial(t, experiment) for t in self.kube.list(
            KATIB_API, "Trial", self.namespace,
            selector=f"katib.kubeflow.org/experiment={experiment.name}")]
        for trial in trials:
            outputs = self.training.outputs(trial.name, prefer=(COLLECTOR,))
            trial.logs = joined(outputs)
            # Katib observes only the objective (and additionalMetricNames); the journey also
            # reads train_seconds and its scenario's checks from the same primary output.
            # Katib's observation wins for what it collected.
            if outputs:
                trial.metrics = {**parse_metrics(outputs[0][1]), **trial.metrics}
        scored = [t for t in trials if t.succeeded and experiment.objective in t.metrics]
        if not scored:
            message = conditions.get("Failed", {}).get("message", "no trial reported "
                                                                  + experiment.objective)
            raise StepFailure(f"Experiment {experiment.name}: {message}")
        pick = max if experiment.goal == "maximize" else min
        best = pick(scored, key=lambda t: t.metrics[experiment.objective])
        return TuneResult(best, trials, time.monotonic() - started)
