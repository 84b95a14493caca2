"""Platform operations against the Kubernetes API double (kmock subclass): the objects sent are
built with KServe's and Katib's typed models (Katib's also parse back). Only on a real cluster:
KServe and Katib controllers acting on them, port-forwards, the Jupyter server."""

from __future__ import annotations

from kubeflow_katib_api import models as katib

from kfbox.sandbox.engines.kubernetes.platform import KubeServing, parse_metrics
from kfbox.sandbox.engines.kubernetes.tools import Tools
from kfbox.sandbox.engines.kubernetes.tuning import experiment_object
from kfbox.sandbox.engines.kubernetes.workspace import RunNamespace
from kfbox.sandbox.platform import Experiment, Parameter, ServeRequest, TrainJob

RESOURCES = {"cpus": 2.0, "memory": "4g"}


def test_inference_service_is_applied_and_reads_back_as_the_kserve_model(cluster) -> None:
    cluster.double.declare("serving.kserve.io/v1beta1", "inferenceservices", "InferenceService",
                           namespaced=True, status=True)
    ns = RunNamespace.create(cluster.kube, "box")
    serving = KubeServing(cluster.kube, ns.name, Tools(), None, RESOURCES)
    request = ServeRequest("digits", "localhost:5000/digits@sha256:" + "a" * 64,
                           ["python", "/app/serve.py"], "digits", "runs/best")
    cluster.kube.apply(serving.inference_service(request))
    stored = cluster.double.get("serving.kserve.io/v1beta1", "inferenceservices", ns.name,
                                "digits")
    assert stored["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "RawDeployment"}
    assert stored["metadata"]["uid"] and stored["spec"]["predictor"]["containers"][0][
        "image"] == request.image
    container = stored["spec"]["predictor"]["containers"][0]
    assert container["env"] == [{"name": "KFBOX_MODEL_DIR", "value": "/mnt/store/runs/best"}]
    assert container["resources"]["limits"] == {"cpu": "2.0", "memory": "4Gi"}
    assert stored["spec"]["predictor"]["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": "kfbox-store"}
    assert cluster.double.get("v1", "namespaces", None, ns.name)["metadata"]["labels"] == {
        "kfbox.run": "box"}


def test_experiment_builds_from_katib_models_with_trial_parameters() -> None:
    trial = TrainJob("t", "localhost:5000/digits@sha256:" + "b" * 64, ["python", "/app/train.py"],
                     args={"epochs": "3", "lr": "0.1"})
    exp = Experiment("tune", trial, [Parameter("lr", "double", 0.001, 0.5, log=True)],
                     objective="accuracy", max_trials=4, parallel_trials=2)
    obj = experiment_object(exp, "ns1", RESOURCES)
    parsed = katib.V1beta1Experiment.from_dict(obj)
    assert parsed.spec.objective.objective_metric_name == "accuracy"
    assert parsed.spec.metrics_collector_spec.collector.kind == "StdOut"
    assert parsed.spec.parameters[0].feasible_space.distribution == "logUniform"
    trainer = obj["spec"]["trialTemplate"]["trialSpec"]["spec"]["trainer"]
    assert trainer["args"] == ["--epochs=3", "--lr=${trialParameters.lr}"]
    assert trainer["command"] == ["python", "/app/train.py"]


def test_metrics_are_the_last_value_of_each_stdout_line() -> None:
    assert parse_metrics("accuracy=0.5\nnoise\nloss=1e-2\naccuracy=0.9\n") == {
        "accuracy": 0.9, "loss": 0.01}
