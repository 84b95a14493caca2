"""What the kind sandbox's notebook may do, tried against the API double with RBAC enforced as
the API server enforces it (rbac.py): requests made with the notebook's service-account token.
It trains with the Kubeflow SDK's TrainerClient as a person's cell would, and starts a Katib
Experiment and an InferenceService, all in its own namespace; each escape a kernel could
attempt through the API (a pod of its own, secrets, more rights, another namespace, the
cluster's runtimes, its own Notebook) is refused with nothing created."""

from __future__ import annotations

import pytest
import requests
from controllers import TRAINER_API, TrainJobs, each
from kubernetes import client

from kfbox.engines.kubernetes import jupyter
from kfbox.engines.kubernetes.kubeapi import KubeApi, KubeError
from kfbox.engines.kubernetes.notebook_access import SERVICE_ACCOUNT, access_objects
from kfbox.engines.kubernetes.serving import KubeServing
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.kubernetes.training import KubeTraining
from kfbox.engines.kubernetes.tuning import experiment_object
from kfbox.engines.platform import Experiment, Parameter, ServeRequest, TrainJob

NAMESPACE = jupyter.SANDBOX_NAMESPACE
TOKEN = "notebook-service-account-token"
IMAGE = "localhost:5001/kfbox/digits@sha256:" + "d" * 64
RESOURCES = {"cpus": 1.0, "memory": "2g"}


@pytest.fixture
def notebook(kubeflow) -> KubeApi:
    """The sandbox's objects as kind's `up` applies them (its namespace and the notebook's
    access among them, as the cluster admin), and a client holding the notebook's token."""
    for obj in jupyter.sandbox_objects("box", IMAGE, "jupyter-token"):
        if obj["kind"] != "Notebook":  # the notebook controller's part is not under test
            kubeflow.kube.apply(obj)
    kubeflow.double.tokens[TOKEN] = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
    configuration = client.Configuration()
    configuration.host = kubeflow.url
    configuration.api_key = {"authorization": f"Bearer {TOKEN}"}
    return KubeApi(client.ApiClient(configuration))


def test_the_sandbox_notebook_runs_as_its_own_service_account() -> None:
    objects = jupyter.sandbox_objects("box", IMAGE, "t")
    notebook = next(o for o in objects if o["kind"] == "Notebook")
    assert notebook["spec"]["template"]["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
    assert [o["kind"] for o in access_objects(NAMESPACE)] == [
        "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]


def test_the_notebook_trains_with_the_sdk_in_its_own_namespace(kubeflow, notebook) -> None:
    """TrainerClient as a cell uses it (the Kubernetes backend, the pod's own credentials):
    the runtimes listed, a TrainJob started, followed to the end and its logs read."""
    from kubeflow.common.types import KubernetesBackendConfig
    from kubeflow.trainer import CustomTrainerContainer, TrainerClient

    TrainJobs(kubeflow.double, each(lambda pod: ("accuracy=0.93\n", True))).install()
    trainer = TrainerClient(backend_config=KubernetesBackendConfig(
        namespace=NAMESPACE, client_configuration=notebook.api.configuration))
    assert "torch-distributed" in [r.name for r in trainer.list_runtimes()]
    name = trainer.train(runtime=trainer.get_runtime("torch-distributed"),
                         trainer=CustomTrainerContainer(image=IMAGE, num_nodes=2))
    job = trainer.wait_for_job_status(name, status={"Complete"}, timeout=30,
                                      polling_interval=1)
    assert job.status == "Complete"
    assert "accuracy=0.93" in "".join(trainer.get_job_logs(name))
    assert kubeflow.double.get(TRAINER_API, "trainjobs", NAMESPACE, name) is not None


def test_the_notebook_starts_an_experiment_and_an_inference_service(kubeflow, notebook) -> None:
    """Both kinds pass their own admission as the notebook's requests (Katib's namespace label
    included: the sandbox's namespace carries it)."""
    training = KubeTraining(notebook, NAMESPACE, RESOURCES)
    experiment = Experiment(
        name="nb-tune", trial=TrainJob("nb-trial", IMAGE, ["python", "/app/train.py"],
                                       model_key="nb/tune"),
        parameters=[Parameter("lr", "double", 0.001, 0.1)], objective="accuracy",
        max_trials=2, parallel_trials=1)
    notebook.apply(experiment_object(experiment, NAMESPACE, training))
    serving = KubeServing(notebook, NAMESPACE, Tools(which={}), None, RESOURCES)
    notebook.apply(serving.inference_service(ServeRequest(
        name="nb-model", image=IMAGE, command=["python", "/app/serve.py"], model_name="m",
        model_key="nb/model")))
    assert kubeflow.double.get("kubeflow.org/v1beta1", "experiments", NAMESPACE, "nb-tune")
    assert kubeflow.double.get("serving.kserve.io/v1beta1", "inferenceservices", NAMESPACE,
                               "nb-model")


POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "escape", "namespace": NAMESPACE},
       "spec": {"containers": [{"name": "c", "image": IMAGE,
                                "securityContext": {"privileged": True}}],
                "hostPID": True,
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}
ESCAPES = {
    "a privileged pod of its own": ("v1", "Pod", POD),
    "a secret (its token's kind)": ("v1", "Secret", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "mine", "namespace": NAMESPACE}, "stringData": {"k": "v"}}),
    "a binding to cluster-admin": ("rbac.authorization.k8s.io/v1", "RoleBinding", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "more", "namespace": NAMESPACE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT,
                      "namespace": NAMESPACE}]}),
    "a deployment": ("apps/v1", "Deployment", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": NAMESPACE},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": POD["spec"]}}}),
    "a TrainJob in another namespace": (TRAINER_API, "TrainJob", {
        "apiVersion": TRAINER_API, "kind": "TrainJob",
        "metadata": {"name": "elsewhere", "namespace": "kubeflow-system"},
        "spec": {"runtimeRef": {"name": "torch-distributed"}}}),
    "a cluster training runtime": (TRAINER_API, "ClusterTrainingRuntime", {
        "apiVersion": TRAINER_API, "kind": "ClusterTrainingRuntime",
        "metadata": {"name": "mine"}, "spec": {"template": {"spec": {}}}}),
    "its own Notebook changed": (jupyter.NOTEBOOK_API, "Notebook", {
        "apiVersion": jupyter.NOTEBOOK_API, "kind": "Notebook",
        "metadata": {"name": jupyter.SANDBOX_NOTEBOOK, "namespace": NAMESPACE},
        "spec": {"template": {"spec": {"serviceAccountName": "default"}}}}),
}


@pytest.mark.parametrize("what", list(ESCAPES))
def test_each_escape_through_the_api_is_refused_with_nothing_made(
    kubeflow, notebook, what: str
) -> None:
    api_version, kind, obj = ESCAPES[what]
    with pytest.raises(KubeError) as refused:
        notebook.apply(obj)
    assert refused.value.status == 403, refused.value
    assert f'User "system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"' in str(refused.value)
    meta = obj["metadata"]
    assert kubeflow.kube.get(api_version, kind, meta["name"], meta.get("namespace")) is None


def test_reads_and_deletes_beyond_its_rights_are_refused(kubeflow, notebook) -> None:
    for attempt in (lambda: notebook.list("v1", "Secret", NAMESPACE),
                    lambda: notebook.list("v1", "Node"),
                    lambda: notebook.list("v1", "Pod", "kubeflow-system"),
                    lambda: notebook.delete("v1", "Namespace", NAMESPACE)):
        with pytest.raises(KubeError) as refused:
            attempt()
        assert refused.value.status == 403
    assert kubeflow.kube.get("v1", "Namespace", NAMESPACE) is not None
    # A shell in another pod is a create on pods/exec: refused as well.
    pod = f"{jupyter.SANDBOX_NOTEBOOK}-0"
    answer = requests.post(f"{kubeflow.url}/api/v1/namespaces/{NAMESPACE}/pods/{pod}/exec",
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code == 403


def test_an_unknown_token_is_unauthorized(kubeflow) -> None:
    answer = requests.get(f"{kubeflow.url}/api/v1/namespaces/{NAMESPACE}/pods",
                          headers={"Authorization": "Bearer forged"}, timeout=10)
    assert answer.status_code == 401


def test_it_may_create_three_kinds_and_nothing_else() -> None:
    from kfbox.engines.kubernetes.notebook_access import CLUSTER_RULES, NAMESPACE_RULES

    writes = {"create", "update", "patch", "delete", "deletecollection", "*"}
    made = {(group, resource) for rule in NAMESPACE_RULES + CLUSTER_RULES
            if writes & set(rule["verbs"])
            for group in rule["apiGroups"] for resource in rule["resources"]}
    assert made == {("trainer.kubeflow.org", "trainjobs"), ("kubeflow.org", "experiments"),
                    ("serving.kserve.io", "inferenceservices")}
    assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in CLUSTER_RULES)
    assert not any("*" in value for rule in NAMESPACE_RULES + CLUSTER_RULES
                   for value in (*rule["apiGroups"], *rule["resources"], *rule["verbs"]))
