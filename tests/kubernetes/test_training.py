"""Training through the Kubeflow SDK's TrainerClient (Kubernetes backend) against the API double
(kmock subclass) with Trainer/JobSet/kubelet stand-ins (controllers.TrainJobs). Verified here:
the TrainJob the SDK creates (Trainer API model), the store mount reaching every node Pod
through runtimePatches (Pods checked with kubernetes-validate), the SDK's set-based Pod selector,
logs → metrics, failures as one line. Only on a real cluster: the Trainer's webhook and
controllers, JobSet, real Pods and their logs."""

from __future__ import annotations

import kubernetes_validate
import pytest
from controllers import TRAINER_API, TrainJobs
from kubeflow_trainer_api import models as trainer

from kfbox.sandbox.engines.kubernetes.platform import KubeTraining
from kfbox.sandbox.engines.kubernetes.workspace import RunNamespace
from kfbox.sandbox.platform import StepFailure, TrainJob

RESOURCES = {"cpus": 2.0, "memory": "4g"}
IMAGE = "localhost:5001/kfbox/digits@sha256:" + "c" * 64


def env_of(pod: dict, container: str = "node") -> dict[str, str]:
    node = next(c for c in pod["spec"]["containers"] if c["name"] == container)
    return {e["name"]: e["value"] for e in node.get("env") or []}


def training(cluster) -> KubeTraining:
    ns = RunNamespace.create(cluster.kube, "box")
    return KubeTraining(cluster.kube, ns.name, RESOURCES, poll_s=1)


def test_trainjob_mounts_the_store_on_every_node_and_reports_metrics(kubeflow) -> None:
    seen: list[dict] = []

    def program(pod: dict) -> tuple[str, bool]:
        seen.append(pod)
        index = pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
        return f"epoch=1 loss=0.9\nrank={index}\naccuracy=0.81\naccuracy=0.93\n", True

    TrainJobs(kubeflow.double, program).install()
    run = training(kubeflow)
    job = TrainJob("digits-train", IMAGE, ["python", "/app/train.py"], args={"epochs": "3"},
                   num_nodes=2, model_key="r1/train")
    result = run.run(job)

    assert result.succeeded and result.model_key == "r1/train"
    assert result.metrics["accuracy"] == 0.93 and result.metrics["rank"] == 0  # node-0's logs
    stored = kubeflow.double.get(TRAINER_API, "trainjobs", run.namespace, "digits-train")
    typed = trainer.TrainerV1alpha1TrainJob.from_dict(stored)
    assert typed.spec.runtime_ref.name == "torch-distributed"
    assert typed.spec.trainer.image == IMAGE and typed.spec.trainer.num_nodes == 2
    assert typed.spec.trainer.command == ["python", "/app/train.py"]
    assert typed.spec.trainer.args == ["--epochs=3"]
    assert stored["spec"]["trainer"]["resourcesPerNode"]["limits"]["memory"] == "4Gi"
    assert len(seen) == 2
    for pod in seen:
        kubernetes_validate.validate(pod, "1.32", strict=True)
        node = pod["spec"]["containers"][0]
        assert node["image"] == IMAGE
        assert {"name": "store", "mountPath": "/mnt/store"} in node["volumeMounts"]
        assert env_of(pod)["KFBOX_MODEL_DIR"] == "/mnt/store/r1/train"
        assert {"name": "store", "persistentVolumeClaim": {"claimName": "kfbox-store"}} in \
            pod["spec"]["volumes"]
    selectors = [r.params.get("labelSelector", "") for r in kubeflow.double.log
                 if r.url.path.endswith("/pods")]
    assert any(" in (" in s for s in selectors), selectors  # the SDK's set-based selector


def test_failed_trainjob_is_one_line_naming_the_cause_with_the_logs(kubeflow) -> None:
    def program(pod: dict) -> tuple[str, bool]:
        return "Traceback (most recent call last):\nValueError: lr must be positive\n", False

    TrainJobs(kubeflow.double, program).install()
    with pytest.raises(StepFailure, match="TrainJob bad failed: ValueError: lr must be "
                                          "positive") as failed:
        training(kubeflow).run(TrainJob("bad", IMAGE, ["python", "/app/train.py"]))
    assert "Traceback" in failed.value.logs


def test_missing_training_runtime_names_it(kubeflow) -> None:
    # As if trainer-runtimes were not installed: no runtime for the TrainJob to start from.
    assert kubeflow.kube.delete(TRAINER_API, "ClusterTrainingRuntime", "torch-distributed")
    TrainJobs(kubeflow.double, lambda pod: ("", True)).install()
    with pytest.raises(StepFailure, match=r"TrainJob t: .*torch-distributed"):
        training(kubeflow).run(TrainJob("t", IMAGE, ["python", "/app/train.py"]))
