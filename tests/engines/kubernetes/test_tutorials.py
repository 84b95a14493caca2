"""The Kubernetes tutorials, run top to bottom from the run's Notebook as the certificate runs
them (KubeNotebooks.execute), against the API double with RBAC enforced: every request the
kernel makes carries the notebook's service-account token, so the Kubeflow SDK's
TrainerClient and OptimizerClient and KServe's KServeClient act with exactly the notebook's
rights. For real: the jupyter_server and its kernel (started with the Notebook pod's resolved
env), the SDK and KServe clients, torchrun's two-node process group of the training job and of
each trial (hostkubelet.py), and the KServe model server the tutorial writes (hostpods.py).
Stand-ins: the Trainer, Katib and KServe controllers (controllers.py), the cluster's DNS (an
HTTP proxy, hostpods.ClusterNetwork), the in-cluster credentials (a kubeconfig). Only on a real
cluster: images, TLS, scheduling, the Katib suggestion service and its real algorithm."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fake_kubectl
import pytest
from controllers import KATIB_API, TRAINER_API, Experiments, TrainJobs
from hostkubelet import HostKubelet
from hostpods import ISVC_API, ClusterNetwork, HostPods

from kfbox.engines.jupyter import one_cell_notebook
from kfbox.engines.kubernetes.engine import TUTORIALS
from kfbox.engines.kubernetes.notebook_access import BOUNDARY, SERVICE_ACCOUNT
from kfbox.engines.kubernetes.notebooks import KubeNotebooks
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.kubernetes.workspace import namespace_object, store_claim
from kfbox.engines.tutorials import RUNTIME_IMAGE_ENV, tutorial_checks
from kfbox.harness.journey import judge_conditions, notebook_metrics
from kfbox.scenarios.scenario import Condition

NAMESPACE = "kfbox-run-tutorials"
TOKEN = "tutorial-notebook-token"
RUNTIME = "localhost:5001/kfbox/runtime@sha256:" + "e" * 64
NOTEBOOK_IMAGE = "localhost:5001/kfbox/jupyter@sha256:" + "f" * 64
TUTORIAL_CHECKS = {Path(t.notebook).name: t for t in tutorial_checks(TUTORIALS)}


@dataclass
class Sandbox:
    notebooks: KubeNotebooks
    pods: HostPods
    trainjobs: TrainJobs


@pytest.fixture
def sandbox(kubeflow, tmp_path, monkeypatch, runner) -> Iterator[Sandbox]:
    """The run's namespace with its model store, the Trainer and Katib stand-ins running node
    pods for real, the host's kubelet for the Notebook and predictors, and KubeNotebooks as the
    platform makes it (the notebook's access applied, the runtime image in its env)."""
    double = kubeflow.double
    trainjobs = TrainJobs(double, HostKubelet({}, tmp_path / "kubelet", timeout_s=300)).install()
    Experiments(double, trainjobs).install()
    double.tokens[TOKEN] = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
    with ClusterNetwork().serve() as network:
        pods = HostPods(double, kubeflow.url, tmp_path / "pods", network,
                        {f"{NAMESPACE}/{SERVICE_ACCOUNT}": TOKEN}).install()
        kubeflow.kube.apply(namespace_object(NAMESPACE, "box"))
        kubeflow.kube.apply(store_claim(NAMESPACE))
        kubectl = fake_kubectl.install(tmp_path, monkeypatch, pods.notebook_port)
        notebooks = KubeNotebooks(
            kubeflow.kube, NAMESPACE, Tools(runner=runner, which={"kubectl": str(kubectl)}),
            tmp_path / "kubeconfig", lambda: NOTEBOOK_IMAGE, tmp_path / "run", poll_s=0.05,
            environment=lambda: {RUNTIME_IMAGE_ENV: RUNTIME})
        try:
            yield Sandbox(notebooks, pods, trainjobs)
        finally:
            notebooks.close()
            pods.stop()


def run_tutorial(sandbox: Sandbox, name: str) -> dict[str, float]:
    """The tutorial executed in the Notebook's kernel; what it printed, judged by its checks."""
    tutorial = TUTORIAL_CHECKS[name]
    result = sandbox.notebooks.execute(Path(tutorial.notebook), f"kfbox-notebook-work/{name}",
                                       timeout_s=600)
    printed = notebook_metrics(result.executed)
    conditions = [Condition.model_validate(c) for c in tutorial.prints]
    failed = [detail for passed, detail in judge_conditions(conditions, printed, name)
              if not passed]
    assert not failed, (failed, sandbox.pods.logs())
    return printed


def test_each_kubernetes_tutorial_proves_a_person_requirement() -> None:
    from kfbox.harness.requirements import REQUIREMENTS

    assert set(TUTORIAL_CHECKS) == {p.name for p in TUTORIALS.glob("*.ipynb")}
    assert {t.requirement for t in TUTORIAL_CHECKS.values()} == {
        "person.trains", "person.tunes", "person.serves"}
    assert all(t.requirement in REQUIREMENTS for t in TUTORIAL_CHECKS.values())


@pytest.mark.heavy
def test_the_train_tutorial_runs_two_nodes_as_one_process_group(kubeflow, sandbox) -> None:
    """TrainerClient with the function trainer, the runtime image from the notebook's env: a
    TrainJob of two node pods in the notebook's namespace, whose torchrun processes formed one
    process group (world_size=2 comes from torch.distributed itself), deleted at the end."""
    printed = run_tutorial(sandbox, "train-from-the-notebook.ipynb")
    assert printed["world_size"] == 2
    nodes = [p for p in sandbox.trainjobs.pods if p["metadata"]["namespace"] == NAMESPACE]
    assert len(nodes) == 2
    assert {c["image"] for p in nodes for c in p["spec"]["containers"]} == {RUNTIME}
    assert kubeflow.double.listed(TRAINER_API, "trainjobs", NAMESPACE) == []


@pytest.mark.heavy
def test_the_tune_tutorial_runs_katib_trials_and_reads_the_best(kubeflow, sandbox) -> None:
    """OptimizerClient.optimize: an Experiment (accepted by Katib's validator) whose four
    TrainJob trials ran for real, each reporting through the collector; the best read from
    status.currentOptimalTrial as Katib writes it; the Experiment deleted at the end."""
    printed = run_tutorial(sandbox, "tune-from-the-notebook.ipynb")
    assert printed["trials"] == 4
    trial_jobs = {p["metadata"]["labels"]["jobset.sigs.k8s.io/jobset-name"]
                  for p in sandbox.trainjobs.pods}
    assert len(trial_jobs) == 4
    assert kubeflow.double.listed(KATIB_API, "experiments", NAMESPACE) == []


@pytest.mark.heavy
def test_the_serve_tutorial_queries_its_model_server_and_removes_it(kubeflow, sandbox) -> None:
    """KServeClient creates an InferenceService whose custom predictor (the runtime image
    running the file the tutorial wrote to the model store) is a real KServe ModelServer; the
    kernel queries it by its cluster address, v1 and v2, and the delete stops it."""
    printed = run_tutorial(sandbox, "serve-from-the-notebook.ipynb")
    assert printed["v1_equals_model"] == printed["v2_equals_model"] == 1
    assert sandbox.pods.running("InferenceService") == []
    assert kubeflow.double.listed(ISVC_API, "inferenceservices", NAMESPACE) == []
    store = sandbox.pods.claim("kfbox-store") / "notebook" / "digits"
    assert (store / "model.joblib").is_file()  # what a person made stays


@pytest.mark.heavy
def test_the_boundary_probe_finds_each_escape_refused_with_nothing_made(kubeflow,
                                                                        sandbox, tmp_path) -> None:
    """The engine's boundary probe (what certify runs for person.boundary) in the Notebook's
    kernel, with the notebook's own credentials: every escape through the API refused (403),
    nothing it tried to make exists."""
    probe = tmp_path / "boundary.ipynb"
    probe.write_text(json.dumps(one_cell_notebook(BOUNDARY.source)))
    result = sandbox.notebooks.execute(probe, "kfbox-notebook-work/boundary", timeout_s=120)
    printed = notebook_metrics(result.executed)
    # The pod's files are this host's here (the kernel is a host process), so the probe's
    # socket check is a real cluster's to make; the API's refusals are this test's.
    conditions = [Condition.model_validate(c) for c in BOUNDARY.prints
                  if c["metric"] != "host_engine_sockets"]
    assert all(passed for passed, _ in judge_conditions(conditions, printed, "probe")), printed
    assert printed["escapes_tried"] == 5
    assert kubeflow.double.get("v1", "pods", NAMESPACE, "kfbox-escape") is None
    assert kubeflow.double.get("rbac.authorization.k8s.io/v1", "rolebindings", NAMESPACE,
                               "kfbox-escape") is None


@pytest.mark.heavy
def test_a_tutorial_opened_in_kinds_sandbox_notebook_runs_there(kubeflow, tmp_path,
                                                                monkeypatch) -> None:
    """What a person does on kind: opens the serve tutorial that `up` put in the sandbox
    notebook's workspace (namespace kfbox, its claim the model store) and runs it top to
    bottom, as that notebook's service account."""
    from kfbox.engines.jupyter import JupyterClient
    from kfbox.engines.kubernetes import jupyter
    from kfbox.engines.kubernetes.kind import KindEngine
    from kfbox.host.config import Ports, SandboxSpec
    from kfbox.host.progress import quiet_reporter

    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    namespace = jupyter.SANDBOX_NAMESPACE
    kubeflow.double.tokens[TOKEN] = f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"
    name = "serve-from-the-notebook.ipynb"
    with ClusterNetwork().serve() as network:
        pods = HostPods(kubeflow.double, kubeflow.url, tmp_path / "pods", network,
                        {f"{namespace}/{SERVICE_ACCOUNT}": TOKEN}).install()
        engine = KindEngine(SandboxSpec(name="box", engine="kind", gpu="off",
                                        ports=Ports(jupyter=pods.notebook_port)),
                            kube=kubeflow.kube)
        try:
            for obj in jupyter.sandbox_objects("box", NOTEBOOK_IMAGE, engine.token(),
                                               {RUNTIME_IMAGE_ENV: RUNTIME}):
                kubeflow.kube.apply(obj)
            engine.offer_tutorials(quiet_reporter())
            client = JupyterClient(engine.notebook_url(), engine.token())
            opened = next(p for p in client.fetch_dir(jupyter.SANDBOX_TUTORIALS,
                                                      tmp_path / "opened") if p.name == name)
            result = client.execute_notebook(opened, jupyter.SANDBOX_TUTORIALS,
                                             tmp_path / "executed.ipynb", timeout_s=600)
            printed = notebook_metrics(result.executed)
        finally:
            pods.stop()
    conditions = [Condition.model_validate(c) for c in TUTORIAL_CHECKS[name].prints]
    assert all(passed for passed, _ in judge_conditions(conditions, printed, name)), \
        (printed, pods.logs())
    model = pods.claim(jupyter.SANDBOX_CLAIM) / "notebook" / "digits" / "model.joblib"
    assert model.is_file()  # in the workspace a person keeps
    assert kubeflow.double.listed(ISVC_API, "inferenceservices", namespace) == []


def test_the_notebooks_access_outside_its_namespace_goes_with_the_run(kubeflow) -> None:
    """The run's Notebook's ClusterRole and binding (reading the cluster's training runtimes)
    are cluster-wide, so deleting the run's namespace would leave them: closing the platform
    removes them (KubePlatform.close calls remove_access)."""
    from kfbox.engines.kubernetes.notebook_access import access_objects, cluster_role_name

    for obj in access_objects(NAMESPACE):
        kubeflow.kube.apply(obj)
    notebooks = KubeNotebooks(kubeflow.kube, NAMESPACE, Tools(which={}), None,
                              lambda: NOTEBOOK_IMAGE, Path("/nonexistent"))
    notebooks.remove_access()
    rbac = "rbac.authorization.k8s.io/v1"
    assert kubeflow.double.get(rbac, "clusterroles", None, cluster_role_name(NAMESPACE)) is None
    assert kubeflow.double.get(rbac, "clusterrolebindings", None,
                               cluster_role_name(NAMESPACE)) is None
    assert kubeflow.double.get(rbac, "roles", NAMESPACE, SERVICE_ACCOUNT)  # the namespace's own
