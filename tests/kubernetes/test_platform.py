"""Serving against the Kubernetes API double (kmock subclass): the InferenceService is built with
KServe's typed models and applied to the double. Only on a real cluster: KServe's controller
acting on it, the predictor pod and the port-forward to it."""

from __future__ import annotations

from kfbox.sandbox.engines.kubernetes.platform import KubeServing
from kfbox.sandbox.engines.kubernetes.tools import Tools
from kfbox.sandbox.engines.kubernetes.workspace import RunNamespace
from kfbox.sandbox.platform import ServeRequest

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
