"""Notebooks and artifacts on Kubernetes. Against the API double (kmock subclass) with a notebook
controller stand-in (pod `<name>-0`, NB_PREFIX, the Service): the Notebook CR (checked against
the notebook controller's CRD schema at v1.10.0, its pod template with kubernetes-validate), its
token Secret. For real: a jupyter_server started with the very arguments the Notebook's
container gets (Kubeflow's `jupyter lab` options with kfbox's token, under NB_PREFIX), driven
over its REST and kernel websocket API. `kubectl port-forward` is a stand-in script that records
its arguments and prints kubectl's "Forwarding from" line for that server; the artifact
commands (`kubectl exec`/`cp`) are checked as commands. Only on a real cluster: the notebook
controller, the image, the port-forward itself, and files in the store volume."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import fake_kubectl
import kubernetes_validate
import pytest
import requests
from hostpods import server_argv, wait_http

from kfbox.engines.kubernetes import jupyter as notebook_servers
from kfbox.engines.kubernetes.artifacts import KubeArtifacts
from kfbox.engines.kubernetes.notebook_access import SERVICE_ACCOUNT
from kfbox.engines.kubernetes.notebooks import NOTEBOOK_NAME, KubeNotebooks
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.kubernetes.workspace import RunNamespace, namespace_object
from kfbox.engines.platform import StepFailure
from kfbox.host.errors import PreflightError
from tests.support.net import free_port

NAMESPACE = "kfbox-run-nbtest"
PREFIX = f"/notebook/{NAMESPACE}/{NOTEBOOK_NAME}"
TOKEN = "nbtest-token"
IMAGE = "ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-pytorch-full:v1.10.0"


def notebook_argv(root: Path, port: int) -> list[str]:
    """The Notebook container's arguments as the kubelet expands them (NB_PREFIX from the
    controller, the token from the Secret), for this host's jupyter_server."""
    notebook = notebook_servers.notebook_object(NAMESPACE, NOTEBOOK_NAME, IMAGE,
                                                {"kfbox-store": "/mnt/store"})
    container = notebook["spec"]["template"]["spec"]["containers"][0]
    return server_argv(container, {"NB_PREFIX": PREFIX, "JUPYTER_TOKEN": TOKEN}, root, port)


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory) -> Iterator[tuple[int, Path]]:
    """A real jupyter_server started as the Notebook's container starts Jupyter."""
    root = tmp_path_factory.mktemp("jupyter-root")
    port = free_port()
    server = subprocess.Popen(notebook_argv(root, port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}{PREFIX}/api/status")
        yield port, root
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def notebooks(kubeflow, jupyter, tmp_path, monkeypatch, runner) -> KubeNotebooks:
    port, _ = jupyter
    kubectl = fake_kubectl.install(tmp_path, monkeypatch, port)
    kubeflow.kube.apply(namespace_object(NAMESPACE, "box"))
    tools = Tools(runner=runner, which={"kubectl": str(kubectl)})
    nb = KubeNotebooks(kubeflow.kube, NAMESPACE, tools, tmp_path / "kubeconfig", lambda: IMAGE,
                       tmp_path / "run", poll_s=0.05, token=TOKEN)
    yield nb
    nb.close()


def write_notebook(path: Path, *sources: str) -> Path:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# digits"]}]
    cells += [{"cell_type": "code", "metadata": {}, "source": [s], "outputs": [],
               "execution_count": None} for s in sources]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}


def test_notebook_cr_then_cells_run_through_the_jupyter_api_over_the_port_forward(
        notebooks, kubeflow, jupyter, tmp_path) -> None:
    _, root = jupyter
    (tmp_path / "scenario").mkdir()
    notebook = write_notebook(tmp_path / "scenario" / "explore.ipynb",
                              "print('baseline_accuracy=0.91')",
                              "open('train.py', 'w').write('print(1)\\n')",
                              "6 * 7")
    result = notebooks.execute(notebook, "kfbox-runs/r1", timeout_s=60)

    assert result.cells_run == 3
    assert result.executed == tmp_path / "run" / "r1" / "notebook" / "explore.executed.ipynb"
    executed = json.loads(result.executed.read_text())["cells"]
    assert executed[1]["outputs"][0]["text"] == "baseline_accuracy=0.91\n"
    assert executed[3]["outputs"][0]["data"]["text/plain"] == "42"
    assert (root / "kfbox-runs/r1/train.py").read_text() == "print(1)\n"
    uploaded = json.loads((root / "kfbox-runs/r1/explore.executed.ipynb").read_text())
    assert "".join(uploaded["cells"][1]["outputs"][0]["text"]) == "baseline_accuracy=0.91\n"
    fetched = notebooks.fetch("kfbox-runs/r1", tmp_path / "workspace")
    assert [p.name for p in fetched] == ["explore.executed.ipynb", "explore.ipynb", "train.py"]
    assert (tmp_path / "workspace" / "train.py").read_text() == "print(1)\n"

    forwards = [json.loads(line) for line in (tmp_path / "kubectl.log").read_text().splitlines()]
    assert forwards == [["--kubeconfig", str(tmp_path / "kubeconfig"), "port-forward",
                         "--address", "127.0.0.1", "-n", NAMESPACE, "svc/kfbox-notebook", ":80"]]
    secret = kubeflow.double.get("v1", "secrets", NAMESPACE, notebook_servers.TOKEN_SECRET)
    assert secret["stringData"] == {"token": TOKEN}
    status = requests.get(f"{notebooks.forward.url}{PREFIX}/api/contents", timeout=5)
    assert status.status_code == 403  # the token is on: nothing without it
    cr = kubeflow.double.get("kubeflow.org/v1", "notebooks", NAMESPACE, "kfbox-notebook")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kfbox-notebook-0"},
           "spec": cr["spec"]["template"]["spec"]}
    kubernetes_validate.validate(pod, "1.32", strict=True)
    container = pod["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["volumeMounts"] == [{"name": "claim-0", "mountPath": "/mnt/store"}]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "kfbox-store"}
    assert container["env"] == [
        {"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": notebook_servers.TOKEN_SECRET, "key": "token"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "KFBOX_STORE", "value": "/mnt/store"},
        {"name": "KFBOX_STORE_CLAIM", "value": "kfbox-store"}]
    # It runs as the notebook's service account, with its access in the run's namespace.
    assert pod["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
    assert kubeflow.double.get("rbac.authorization.k8s.io/v1", "rolebindings", NAMESPACE,
                               SERVICE_ACCOUNT)


def test_a_failing_cell_is_one_line_with_the_traceback(notebooks, tmp_path) -> None:
    notebook = write_notebook(tmp_path / "bad.ipynb", "x = 1", "x / 0", "print('not reached')")
    with pytest.raises(StepFailure) as failed:
        notebooks.execute(notebook, "kfbox-runs/bad", timeout_s=60)
    assert str(failed.value) == "cell 3: ZeroDivisionError: division by zero"
    assert "ZeroDivisionError" in failed.value.logs
    executed = tmp_path / "run" / "bad" / "notebook" / "bad.executed.ipynb"
    assert json.loads(executed.read_text())["cells"][2]["outputs"][0]["ename"] == \
        "ZeroDivisionError"


def test_the_scenario_folder_is_never_written(notebooks, tmp_path) -> None:
    """Scenario folders are package data: executed notebooks go under the run dir."""
    scenario = tmp_path / "scenario"
    scenario.mkdir()
    good = write_notebook(scenario / "good.ipynb", "print('ok')")
    bad = write_notebook(scenario / "bad.ipynb", "1 / 0")
    before = snapshot(scenario)
    notebooks.execute(good, "kfbox-runs/good", timeout_s=60)
    with pytest.raises(StepFailure, match=r"^cell 2: ZeroDivisionError"):
        notebooks.execute(bad, "kfbox-runs/bad2", timeout_s=60)
    assert snapshot(scenario) == before
    assert sorted(snapshot(tmp_path / "run")) == ["bad2/notebook/bad.executed.ipynb",
                                                  "good/notebook/good.executed.ipynb"]


def test_artifacts_are_read_through_the_notebook_pod(notebooks, runner, tmp_path) -> None:
    kubeconfig = str(tmp_path / "kubeconfig")
    runner.script.append((("kubectl", "--kubeconfig", kubeconfig, "exec"), 0,
                          "/mnt/store/r1/train/model.joblib\n/mnt/store/r1/train/meta.json\n"))
    artifacts = KubeArtifacts(notebooks)
    assert artifacts.list("r1/train") == ["r1/train/meta.json", "r1/train/model.joblib"]
    dest = artifacts.fetch("r1/tune/t-0001", tmp_path / "model")
    assert dest == tmp_path / "model"
    assert runner.commands("kubectl") == [
        ["kubectl", "--kubeconfig", kubeconfig, "exec", "-n", NAMESPACE, "kfbox-notebook-0",
         "--", "sh", "-c", 'if [ -d "$1" ]; then find "$1" -type f; fi', "sh",
         "/mnt/store/r1/train"],
        ["kubectl", "--kubeconfig", kubeconfig, "cp",
         f"{NAMESPACE}/kfbox-notebook-0:/mnt/store/r1/tune/t-0001", str(tmp_path / "model")],
    ]


def test_listing_a_store_folder_nothing_was_saved_in_is_empty(notebooks, tmp_path) -> None:
    """The listing runs in the notebook pod's shell: a missing folder prints nothing and
    exits 0 (find alone exits 1, which kubectl exec passes on as a failure)."""
    artifacts = KubeArtifacts(notebooks)
    assert artifacts.list("r9/never") == []
    argv = next(c for c in notebooks.tools.runner.calls if "exec" in c)
    script = argv[argv.index("--") + 1:]
    store = tmp_path / "store"
    (store / "r1").mkdir(parents=True)
    (store / "r1" / "model.joblib").write_text("m")
    absent = subprocess.run([*script[:-1], str(store / "r9")], capture_output=True, text=True)
    present = subprocess.run([*script[:-1], str(store / "r1")], capture_output=True, text=True)
    assert (absent.returncode, absent.stdout) == (0, "")
    assert present.stdout.split() == [str(store / "r1" / "model.joblib")]


def test_the_run_notebook_gets_the_sandboxs_resources(kubeflow, tmp_path) -> None:
    ns = RunNamespace.create(kubeflow.kube, "box")
    books = KubeNotebooks(kubeflow.kube, ns.name, Tools(which={"kubectl": None}), None,
                          lambda: IMAGE,
                          tmp_path, resources={"cpus": 2.0, "memory": "4g"})
    with pytest.raises(PreflightError):  # no kubectl to port-forward: the Notebook counts
        books.ensure_server()
    stored = kubeflow.double.get("kubeflow.org/v1", "notebooks", ns.name, "kfbox-notebook")
    resources = stored["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "2", "memory": "4Gi"},
                         "requests": {"cpu": "100m", "memory": "4Gi"}}
