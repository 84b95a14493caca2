"""Serving against the Kubernetes API double (kmock subclass) with a KServe v0.20.0 stand-in
(controllers.serve_inference_services: the deployment mode from the status, the annotation or
inferenceservice-config, the config's parsing rules, the raw URL's domain rule; webhooks.
inference_service: the name, and an update may not change the recorded mode). Verified here:
the InferenceService built with KServe's typed models and accepted by KServe v0.20.0's CRD
schema (an SDK field that release lacks would be refused), resources as quantities, the GPU
runtime class, Ready through the Standard mode, the port-forward to `<name>-predictor` (a
stand-in kubectl); and that the double refuses what KServe cannot serve. Only on a real
cluster: KServe's controller and webhooks, the predictor pod, the port-forward itself."""

from __future__ import annotations

import json
import re

import fake_kubectl
import pytest
import upstream

from kfbox.engines.kubernetes.serving import KubeServing
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.kubernetes.workspace import RunNamespace
from kfbox.engines.platform import ServeRequest, StepFailure

RESOURCES = {"cpus": 1.5, "memory": "4g"}
IMAGE = "localhost:5000/digits@sha256:" + "a" * 64


def request(name: str = "digits", gpus: int = 0) -> ServeRequest:
    return ServeRequest(name, IMAGE, ["python", "/app/serve.py"], "digits", "runs/best",
                        gpus=gpus, timeout_s=1)


def serving(cluster, tools: Tools | None = None, gpu_runtime_class: str | None = None):
    ns = RunNamespace.create(cluster.kube, "box")
    return KubeServing(cluster.kube, ns.name, tools or Tools(), None, RESOURCES,
                       gpu_runtime_class, poll_s=0.05)


def kserve_config(cluster, **data: dict) -> None:
    """KServe's inferenceservice-config in the double, each key's value as the JSON KServe
    reads."""
    cluster.double.put("v1", "configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "inferenceservice-config", "namespace": "kserve"},
        "data": {key: json.dumps(value) for key, value in data.items()}})


def served_unannotated(cluster, serve: KubeServing, name: str) -> dict:
    """An InferenceService applied with no deployment-mode annotation, as the double stored it:
    the mode comes from the config."""
    isvc = serve.inference_service(request(name))
    del isvc["metadata"]["annotations"]
    cluster.kube.apply(isvc)
    return cluster.double.get("serving.kserve.io/v1beta1", "inferenceservices",
                              serve.namespace, name)


def test_inference_service_is_raw_ready_and_reached_by_port_forward(kubeflow, tmp_path,
                                                                   monkeypatch) -> None:
    kubectl = fake_kubectl.install(tmp_path, monkeypatch, 43211)
    serve = serving(kubeflow, Tools(which={"kubectl": str(kubectl)}))
    endpoint = serve.deploy(request())
    try:
        assert endpoint.url == "http://127.0.0.1:43211" and endpoint.model_name == "digits"
        stored = kubeflow.double.get("serving.kserve.io/v1beta1", "inferenceservices",
                                     serve.namespace, "digits")
        assert stored["metadata"]["annotations"] == {
            "serving.kserve.io/deploymentMode": "Standard"}
        assert stored["status"]["deploymentMode"] == "Standard"
        assert stored["status"]["url"] == f"http://digits-{serve.namespace}.example.com"
        container = stored["spec"]["predictor"]["containers"][0]
        assert container["image"] == IMAGE
        assert container["env"] == [{"name": "KFBOX_MODEL_DIR",
                                     "value": "/mnt/store/runs/best"}]
        assert container["resources"]["limits"] == {"cpu": "1500m", "memory": "4Gi"}
        assert "runtimeClassName" not in stored["spec"]["predictor"]
        assert stored["spec"]["predictor"]["volumes"][0]["persistentVolumeClaim"] == {
            "claimName": "kfbox-store"}
    finally:
        serve.delete("digits")
    forwards = [json.loads(line) for line in (tmp_path / "kubectl.log").read_text().split("\n")
                if line]
    assert forwards == [["port-forward", "--address", "127.0.0.1", "-n", serve.namespace,
                         "svc/digits-predictor", ":80"]]


def test_a_gpu_model_server_names_the_gpu_runtime_class(kubeflow) -> None:
    isvc = serving(kubeflow, gpu_runtime_class="nvidia").inference_service(request(gpus=1))
    assert isvc["spec"]["predictor"]["runtimeClassName"] == "nvidia"
    assert isvc["spec"]["predictor"]["containers"][0]["resources"]["limits"][
        "nvidia.com/gpu"] == "1"


def test_the_double_serves_no_inference_service_kserve_cannot(kubeflow) -> None:
    """KServe v0.20.0: without the annotation the config's default (Serverless, upstream's,
    read as Knative) needs Knative; an ingress key without ingressGateway is refused; the raw
    URL's domain must be a valid DNS name."""
    serve = serving(kubeflow)
    kserve_config(kubeflow, deploy={"defaultDeploymentMode": "Serverless"},
                  ingress={"ingressDomain": "example.com"})
    with pytest.raises(StepFailure, match="ingressGateway is required"):
        serve.deploy(request())
    kserve_config(kubeflow, deploy={"defaultDeploymentMode": "Serverless"})
    stored = served_unannotated(kubeflow, serve, "plain")
    assert "no Knative" in stored["status"]["conditions"][0]["message"]
    assert stored["status"]["deploymentMode"] == "Knative"
    with pytest.raises(StepFailure, match="invalid domain name"):
        serve.deploy(request("m" * 60))


@pytest.mark.parametrize("field", ["spec.tracing", "spec.predictor.schedulingGroup"])
def test_the_double_refuses_a_field_kserve_v0_20_0_does_not_have(kubeflow, field) -> None:
    """The KServe SDK's models (kserve 0.21.0) are newer than the pinned release: a field only
    they know would be pruned by the real server, so the double refuses it. (v0.15.2 lacked
    spec.predictor.storageUris; v0.20.0 has it.)"""
    assert field in upstream.component("kserve")["sdk_only_fields"]
    isvc = serving(kubeflow).inference_service(request())
    parent, _, key = field.rpartition(".")
    node = isvc
    for part in parent.split("."):
        node = node[part]
    node[key] = {"name": "x"}
    with pytest.raises(Exception, match=rf"{re.escape(field)}: unknown field"):
        kubeflow.kube.apply(isvc)
    del node[key]
    isvc["spec"]["predictor"]["storageUris"] = [{"uri": "pvc://kfbox-store/x"}]
    kubeflow.kube.apply(isvc)  # v0.20.0 has storageUris


def test_the_double_refuses_changing_a_recorded_deployment_mode(kubeflow) -> None:
    """KServe v0.20.0 (inference_service_validation.go validateDeploymentMode): once the
    controller has recorded `Standard`, an update annotated with the deprecated alias
    `RawDeployment` is refused, as the string differs; kfbox annotates `Standard`, so a
    re-apply is accepted."""
    serve = serving(kubeflow)
    isvc = serve.inference_service(request())
    kubeflow.kube.apply(isvc)
    kubeflow.kube.apply(serve.inference_service(request()))  # kfbox's own re-apply
    isvc["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "RawDeployment"}
    with pytest.raises(Exception, match="deploymentMode cannot be changed from 'Standard' to "
                                        "'RawDeployment'"):
        kubeflow.kube.apply(isvc)


@pytest.mark.parametrize(("data", "why"), [
    ({"deploy": {"defaultDeploymentMode": "Raw"}},
     "invalid deployment mode. Supported modes are Knative, Standard and ModelMesh"),
    ({"deploy": {}}, "defaultDeploymentMode is required"),
    ({"ingress": {"ingressGateway": "a/b", "enableGatewayApi": True}},
     "kserveIngressGateway is required"),
    ({"ingress": {"ingressGateway": "a/b", "pathTemplate": "/p/{{ .Name }}"}},
     "ingressDomain is required if pathTemplate is given"),
], ids=["mode", "no-mode", "gateway-api", "path-template"])
def test_the_double_refuses_a_config_kserve_v0_20_0_refuses(kubeflow, data, why) -> None:
    """configmap.go at v0.20.0: NewDeployConfig and NewIngressConfig."""
    serve = serving(kubeflow)
    kserve_config(kubeflow, **data)
    with pytest.raises(StepFailure, match=re.escape(why)):
        serve.deploy(request())


def test_the_deprecated_alias_in_the_config_still_means_standard(kubeflow) -> None:
    """NewDeployConfig turns a default of `RawDeployment` into `Standard`: an unannotated
    InferenceService is served under it."""
    serve = serving(kubeflow)
    kserve_config(kubeflow, deploy={"defaultDeploymentMode": "RawDeployment"})
    stored = served_unannotated(kubeflow, serve, "plain")
    assert stored["status"]["deploymentMode"] == "Standard"
    assert stored["status"]["conditions"] == [{"type": "Ready", "status": "True"}]


@pytest.mark.parametrize("resources", [{"cpus": 0.5, "memory": "4g"},
                                       {"cpus": 2.0, "memory": "1g"}], ids=["cpu", "memory"])
def test_a_model_server_under_kserves_default_requests_is_served(kubeflow, resources) -> None:
    """KServe fills a request the container leaves unset from inferenceservice-config (1 CPU,
    2Gi): limits alone under those make requests above limits, which the API server refuses
    in the predictor's pod template. kfbox sets the requests with the limits."""
    ns = RunNamespace.create(kubeflow.kube, "box")
    serve = KubeServing(kubeflow.kube, ns.name, Tools(), None, resources, poll_s=0.05)
    isvc = serve.inference_service(request("small"))
    kubeflow.kube.apply(isvc)
    stored = kubeflow.double.get("serving.kserve.io/v1beta1", "inferenceservices", ns.name,
                                 "small")
    conditions = stored["status"]["conditions"]
    assert conditions == [{"type": "Ready", "status": "True"}], conditions[0].get("message")
    container = stored["spec"]["predictor"]["containers"][0]
    assert container["resources"]["requests"] == container["resources"]["limits"]


def test_the_double_refuses_requests_above_limits_as_kubernetes_does(kubeflow) -> None:
    """KServe's defaults (1 CPU) over a 500m limit: the predictor Deployment is invalid."""
    serve = serving(kubeflow)
    isvc = serve.inference_service(request("limited"))
    container = isvc["spec"]["predictor"]["containers"][0]
    container["resources"] = {"limits": {"cpu": "500m", "memory": "4Gi"}}
    kubeflow.kube.apply(isvc)
    stored = kubeflow.double.get("serving.kserve.io/v1beta1", "inferenceservices",
                                 serve.namespace, "limited")
    assert stored["spec"]["predictor"]["containers"][0]["resources"]["requests"] == {
        "cpu": "1", "memory": "2Gi"}
    assert 'must be less than or equal to cpu limit of 500m' in \
        stored["status"]["conditions"][0]["message"]
