"""Tuning as a Katib Experiment against the API double (kmock subclass) with Katib and Trainer
stand-ins (controllers.Experiments, controllers.TrainJobs). Verified here: the Experiment built
from Katib's and the Trainer's typed models, each trial's TrainJob mounting the model store at
its own key (`${trialSpec.Name}` substituted as Katib does), Trial.model_key naming the key the
best trial saved under, the best trial by the objective. Only on a real cluster: Katib's
webhook, suggestion services, metrics collector sidecar and trial controller (which must list
TrainJob in katib-config's trialResources), and the Trainer running each trial."""

from __future__ import annotations

import kubernetes_validate
import pytest
from controllers import Experiments, TrainJobs
from kubeflow_katib_api import models as katib
from kubeflow_trainer_api import models as trainer

from kfbox.sandbox.engines.kubernetes.platform import KubeTraining
from kfbox.sandbox.engines.kubernetes.tuning import KubeTuning, experiment_object
from kfbox.sandbox.engines.kubernetes.workspace import RunNamespace
from kfbox.sandbox.platform import Experiment, Parameter, StepFailure, TrainJob

RESOURCES = {"cpus": 2.0, "memory": "4g"}
IMAGE = "localhost:5001/kfbox/digits@sha256:" + "b" * 64


def experiment(max_trials: int = 3, goal: str = "maximize") -> Experiment:
    trial = TrainJob("trial", IMAGE, ["python", "/app/train.py"],
                     args={"epochs": "3", "lr": "0.1"}, model_key="r1/tune")
    return Experiment("r1-tune", trial, [Parameter("lr", "double", 0.1, 0.5, log=True)],
                      objective="accuracy", goal=goal, max_trials=max_trials)


def test_experiment_builds_from_katib_and_trainer_models() -> None:
    obj = experiment_object(experiment(), "ns1", RESOURCES)
    parsed = katib.V1beta1Experiment.from_dict(obj)
    template = parsed.spec.trial_template
    assert parsed.spec.objective.objective_metric_name == "accuracy"
    assert parsed.spec.metrics_collector_spec.collector.kind == "StdOut"
    assert parsed.spec.parameters[0].feasible_space.distribution == "logUniform"
    assert {(p.name, p.reference) for p in template.trial_parameters} == {
        ("lr", "lr"), ("kfboxTrialName", "${trialSpec.Name}")}
    assert template.success_condition == 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    assert '"Failed"' in template.failure_condition
    job = trainer.TrainerV1alpha1TrainJobSpec.from_dict(template.trial_spec["spec"])
    assert job.trainer.args == ["--epochs=3", "--lr=${trialParameters.lr}"]
    pod_patch = job.runtime_patches[0].training_runtime_spec.template.spec.replicated_jobs[0]
    assert pod_patch.name == "node"
    node = pod_patch.template.spec.template.spec.containers[0]
    assert node.name == "node" and node.volume_mounts[0].mount_path == "/mnt/store"
    assert node.env[0].value == "/mnt/store/r1/tune/${trialParameters.kfboxTrialName}"


def program_scoring_lr(saved: dict[str, str]):
    """A training program whose accuracy rises with --lr, recording where it saved."""

    def run(pod: dict) -> tuple[str, bool]:
        node = pod["spec"]["containers"][0]
        lr = float(next(a for a in node["args"] if a.startswith("--lr=")).split("=")[1])
        model_dir = next(e["value"] for e in node["env"] if e["name"] == "KFBOX_MODEL_DIR")
        saved[pod["metadata"]["labels"]["jobset.sigs.k8s.io/jobset-name"]] = model_dir
        return f"accuracy={0.5 + lr:.4f}\n", True

    return run


def tuning(cluster) -> KubeTuning:
    ns = RunNamespace.create(cluster.kube, "box")
    return KubeTuning(cluster.kube, ns.name, KubeTraining(cluster.kube, ns.name, RESOURCES),
                      poll_s=0.05)


def test_each_trial_saves_under_its_own_key_and_the_best_trial_names_it(kubeflow) -> None:
    saved: dict[str, str] = {}
    trainjobs = TrainJobs(kubeflow.double, program_scoring_lr(saved)).install()
    Experiments(kubeflow.double, trainjobs).install()
    result = tuning(kubeflow).run(experiment(max_trials=3))

    assert len(result.trials) == 3 and all(t.succeeded for t in result.trials)
    assert len(set(saved.values())) == 3  # no two trials share a model folder
    for trial in result.trials:
        assert saved[trial.name] == f"/mnt/store/{trial.model_key}"
        assert trial.model_key.startswith("r1/tune/") and trial.duration_s == 7
    best = max(result.trials, key=lambda t: float(t.parameters["lr"]))
    assert result.best.name == best.name and result.best.model_key == f"r1/tune/{best.name}"
    assert result.best.metrics["accuracy"] == pytest.approx(0.5 + float(best.parameters["lr"]),
                                                            abs=1e-4)
    for pod in trainjobs.pods:
        kubernetes_validate.validate(pod, "1.32", strict=True)


def test_minimize_picks_the_lowest_and_no_scored_trial_is_one_line(kubeflow) -> None:
    saved: dict[str, str] = {}
    trainjobs = TrainJobs(kubeflow.double, program_scoring_lr(saved)).install()
    Experiments(kubeflow.double, trainjobs).install()
    result = tuning(kubeflow).run(experiment(goal="minimize"))
    assert result.best.parameters["lr"] == min((t.parameters["lr"] for t in result.trials),
                                               key=float)

    trainjobs.program = lambda pod: ("Killed\n", False)
    with pytest.raises(StepFailure, match="Experiment r2-tune: no trial reported accuracy"):
        exp = experiment()
        exp.name = "r2-tune"
        tuning(kubeflow).run(exp)
