"""Tuning as a Katib Experiment against the API double (kmock subclass) with Katib's experiment
validator and the Trainer's TrainJob rules as admission (webhooks.py), and Katib and Trainer
stand-ins (controllers.Experiments, controllers.TrainJobs) that run trials only as Katib v0.19.0
does: TrainJob in katib-config's trialResources, the controller allowed to create TrainJobs,
metrics collected only in labelled namespaces. Verified here: the Experiment built from Katib's
and the Trainer's typed models and accepted by Katib's validator and the Experiment structure
at v0.19.0, each trial's TrainJob (created through the Trainer's admission) saving at its own
key (`${trialSpec.Name}` substituted as Katib does), Trial.model_key naming the key the best
trial saved under, the best trial by the objective. Only on a real cluster: Katib's webhooks and
controllers themselves, suggestion services, the metrics collector sidecar, and the Trainer
running each trial."""

from __future__ import annotations

import kubernetes_validate
import pytest
from controllers import Experiments, TrainJobs, each
from kubeflow_katib_api import models as katib
from kubeflow_trainer_api import models as trainer

from kfbox.engines.kubernetes.training import KubeTraining
from kfbox.engines.kubernetes.tuning import KubeTuning, experiment_object
from kfbox.engines.kubernetes.workspace import RunNamespace
from kfbox.engines.platform import Experiment, Parameter, StepFailure, TrainJob

RESOURCES = {"cpus": 2.0, "memory": "4g"}
IMAGE = "localhost:5001/kfbox/digits@sha256:" + "b" * 64


def experiment(max_trials: int = 3, goal: str = "maximize") -> Experiment:
    trial = TrainJob("trial", IMAGE, ["python", "/app/train.py"],
                     args={"epochs": "3", "lr": "0.1"}, model_key="r1/tune")
    return Experiment("r1-tune", trial, [Parameter("lr", "double", 0.1, 0.5, log=True)],
                      objective="accuracy", goal=goal, max_trials=max_trials)


def test_experiment_builds_from_katib_and_trainer_models() -> None:
    obj = experiment_object(experiment(), "ns1", KubeTraining(None, "ns1", RESOURCES))
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
    assert not node.env  # the Trainer's webhook refuses env in a node container patch
    assert [(e.name, e.value) for e in job.trainer.env] == [
        ("KFBOX_MODEL_DIR", "/mnt/store/r1/tune/${trialParameters.kfboxTrialName}")]
    assert job.trainer.command[:3] == ["python", "-m", "torch.distributed.run"]


def words(container: dict) -> list[str]:
    """The container's command line as words (Katib's wrapper makes it one `sh -c` string)."""
    return " ".join([*container.get("command", []), *container.get("args", [])]).split()


def program_scoring_lr(saved: dict[str, str]):
    """A training program whose accuracy rises with --lr, recording where it saved."""

    def run(pod: dict) -> tuple[str, bool]:
        node = pod["spec"]["containers"][0]
        lr = float(next(a for a in words(node) if a.startswith("--lr=")).split("=")[1])
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
    trainjobs = TrainJobs(kubeflow.double, each(program_scoring_lr(saved))).install()
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
    trainjobs = TrainJobs(kubeflow.double, each(program_scoring_lr(saved))).install()
    Experiments(kubeflow.double, trainjobs).install()
    result = tuning(kubeflow).run(experiment(goal="minimize"))
    assert result.best.parameters["lr"] == min((t.parameters["lr"] for t in result.trials),
                                               key=float)

    trainjobs.kubelet = each(lambda pod: ("Killed\n", False))
    with pytest.raises(StepFailure, match="Experiment r2-tune: no trial reported accuracy"):
        exp = experiment()
        exp.name = "r2-tune"
        tuning(kubeflow).run(exp)


def test_run_namespaces_carry_katibs_metrics_collector_label(kubeflow) -> None:
    """Katib v0.19.0 refuses an Experiment in a namespace without the label (and injects its
    metrics collector only into labelled ones): every run namespace carries it."""
    ns = RunNamespace.create(kubeflow.kube, "box")
    labels = kubeflow.double.get("v1", "namespaces", None, ns.name)["metadata"]["labels"]
    assert labels["katib.kubeflow.org/metrics-collector-injection"] == "enabled"


def test_the_double_refuses_an_experiment_in_an_unlabelled_namespace(kubeflow) -> None:
    kubeflow.kube.apply({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": "plain", "labels": {"kfbox.run": "box"}}})
    training_ = KubeTraining(kubeflow.kube, "plain", RESOURCES)
    with pytest.raises(StepFailure, match=r'Experiment r1-tune refused: admission webhook '
                                          r'"validator\.experiment\.katib\.kubeflow\.org" '
                                          r'denied the request: .*lacks label "katib\.kubeflow'
                                          r'\.org/metrics-collector-injection: enabled"'):
        KubeTuning(kubeflow.kube, "plain", training_).run(experiment())


def test_the_double_runs_no_trainjob_trial_without_katibs_trial_resource(kubeflow) -> None:
    """katib-config as Katib v0.18.0 ships it (no TrainJob in trialResources): the
    controller never watches TrainJobs, so the Experiment never finishes."""
    import yaml

    config = kubeflow.double.get("v1", "configmaps", "kubeflow", "katib-config")
    settings = yaml.safe_load(config["data"]["katib-config.yaml"])
    settings["init"]["controller"]["trialResources"].remove(
        "TrainJob.v1alpha1.trainer.kubeflow.org")
    config["data"]["katib-config.yaml"] = yaml.safe_dump(settings)
    kubeflow.double.put("v1", "configmaps", config)
    Experiments(kubeflow.double, TrainJobs(kubeflow.double, each(lambda p: ("", True)))).install()
    tuner = tuning(kubeflow)
    exp = experiment(max_trials=1)
    exp.trial.timeout_s = 0.2
    with pytest.raises(StepFailure, match="did not finish in time"):
        tuner.run(exp)
    assert not kubeflow.double.get("kubeflow.org/v1beta1", "experiments", tuner.namespace,
                                   exp.name).get("status")


def test_the_double_refuses_what_katibs_validator_refuses(kubeflow) -> None:
    """validator.go: a trial parameter the template never uses, a name over 40 characters."""
    ns = RunNamespace.create(kubeflow.kube, "box")
    obj = experiment_object(experiment(), ns.name, KubeTraining(None, ns.name, RESOURCES))
    obj["spec"]["trialTemplate"]["trialParameters"].append({"name": "unused",
                                                            "reference": "lr"})
    with pytest.raises(Exception, match=r"parameter name: unused in spec\.trialParameters not "
                                        r"found in spec\.trialTemplate"):
        kubeflow.kube.apply(obj)
    obj = experiment_object(experiment(), ns.name, KubeTraining(None, ns.name, RESOURCES))
    obj["metadata"]["name"] = "x" * 41
    with pytest.raises(Exception, match="may not be longer than 40 characters"):
        kubeflow.kube.apply(obj)


def test_trial_logs_and_metrics_come_from_katibs_collector_sidecar(kubeflow) -> None:
    """Katib v0.19.0 sends the primary container's output to /var/log/katib/metrics.log,
    echoed only by the `metrics-logger-and-collector` sidecar, and observes only the objective
    (and additionalMetricNames): the trial's log and the other metrics the journey reads
    (train_seconds, the scenario's checks) come from that sidecar's log."""
    def program(pod: dict) -> tuple[str, bool]:
        lr = next(a for a in words(pod["spec"]["containers"][0]) if a.startswith("--lr="))
        return f"epoch=1\naccuracy={0.5 + float(lr[5:]):.4f}\ntrain_seconds=4.5\n", True

    trainjobs = TrainJobs(kubeflow.double, each(program)).install()
    Experiments(kubeflow.double, trainjobs).install()
    result = tuning(kubeflow).run(experiment(max_trials=2))
    primary = [p for p in trainjobs.pods if any(
        c["name"] == "metrics-logger-and-collector" for c in p["spec"]["containers"])]
    assert len(primary) == 2  # the double injected the sidecar, as Katib does
    for trial in result.trials:
        assert "train_seconds=4.5" in trial.logs and "accuracy=" in trial.logs
        assert trial.metrics["train_seconds"] == 4.5
        assert trial.metrics["accuracy"] > 0.5


def sdk_style_experiment(namespace: str, command: list[str], goal: str) -> dict:
    """An Experiment as the Kubeflow SDK's OptimizerClient writes it: a TrainJob trial
    template naming no success or failure condition and no primary pod labels."""
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
            "metadata": {"name": "sdk", "namespace": namespace},
            "spec": {"objective": {"type": goal, "objectiveMetricName": "accuracy"},
                     "algorithm": {"algorithmName": "random"},
                     "maxTrialCount": 3, "parallelTrialCount": 2,
                     "parameters": [{"name": "lr", "parameterType": "double",
                                     "feasibleSpace": {"min": "0.1", "max": "0.4"}}],
                     "trialTemplate": {
                         "primaryContainerName": "node", "retain": True,
                         "trialParameters": [{"name": "lr", "reference": "lr"}],
                         "trialSpec": {"apiVersion": "trainer.kubeflow.org/v1alpha1",
                                       "kind": "TrainJob",
                                       "spec": {"runtimeRef": {"name": "torch-distributed"},
                                                "trainer": {"image": IMAGE, "numNodes": 2,
                                                            "command": command}}}}}}


@pytest.mark.parametrize("goal", ["maximize", "minimize"])
def test_the_double_defaults_wraps_and_reports_as_katib_does(kubeflow, goal: str) -> None:
    """Katib v0.19.0 on an SDK-style Experiment: its defaulter gives the TrainJob template the
    success/failure conditions and primary pod labels (node 0 only); its pod mutator keeps a
    `bash -c` script's shell and appends the redirect and completion mark, with the metrics
    volume in both containers; each trial's metric carries min, max and latest; and
    status.currentOptimalTrial names the best trial in the goal's direction."""
    kubeflow.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "ns-sdk", "labels": {"katib.kubeflow.org/metrics-collector-injection": "enabled"}}})

    def program(pod: dict) -> tuple[str, bool]:
        lr = float(next(p["value"] for p in kubeflow.double.get(
            "kubeflow.org/v1beta1", "trials", "ns-sdk",
            pod["metadata"]["labels"]["jobset.sigs.k8s.io/jobset-name"])["spec"]
            ["parameterAssignments"]))
        return f"accuracy=0.1\naccuracy={lr:.4f}\n", True

    trainjobs = TrainJobs(kubeflow.double, each(program)).install()
    Experiments(kubeflow.double, trainjobs).install()
    script = "read -r -d '' SCRIPT << EOM\nf(lr=${trialParameters.lr})\nEOM\ntorchrun \"f.py\""
    kubeflow.kube.apply(sdk_style_experiment("ns-sdk", ["bash", "-c", script], goal))
    stored = kubeflow.double.get("kubeflow.org/v1beta1", "experiments", "ns-sdk", "sdk")
    template = stored["spec"]["trialTemplate"]
    assert template["successCondition"] == ('status.conditions.#(type=="Complete")#'
                                            '|#(status=="True")#')
    assert template["primaryPodLabels"] == {"jobset.sigs.k8s.io/replicatedjob-name": "node",
                                            "batch.kubernetes.io/job-completion-index": "0"}
    collected = [p for p in trainjobs.pods if len(p["spec"]["containers"]) == 2]
    assert len(collected) == 3 and len(trainjobs.pods) == 6  # node 0 of each trial only
    node, sidecar = collected[0]["spec"]["containers"]
    assert node["command"] == ["bash", "-c"]
    assert node["args"][0].startswith("read -r -d '' SCRIPT << EOM\nf(lr=0.")
    assert node["args"][0].endswith('torchrun "f.py" 1>/var/log/katib/metrics.log 2>&1 && '
                                    "echo completed > /var/log/katib/$$$$.pid")
    assert {"name": "metrics-volume", "mountPath": "/var/log/katib"} in node["volumeMounts"]
    assert sidecar["volumeMounts"] == [{"name": "metrics-volume", "mountPath": "/var/log/katib"}]
    trials = kubeflow.double.listed("kubeflow.org/v1beta1", "trials", "ns-sdk")
    metric = trials[0]["status"]["observation"]["metrics"][0]
    assert (metric["min"], metric["latest"]) == ("0.1", metric["max"])
    values = {t["metadata"]["name"]: float(t["status"]["observation"]["metrics"][0]["latest"])
              for t in trials}
    best = kubeflow.double.get("kubeflow.org/v1beta1", "experiments", "ns-sdk", "sdk")[
        "status"]["currentOptimalTrial"]
    pick = max if goal == "maximize" else min
    assert best["bestTrialName"] == pick(values, key=values.get)
    assert best["observation"]["metrics"][0]["latest"] == f"{pick(values.values()):.4f}"
