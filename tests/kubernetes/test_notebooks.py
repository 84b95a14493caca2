"""Notebooks and artifacts on Kubernetes. Against the API double (kmock subclass) with a notebook
controller stand-in: the Notebook CR (its pod template checked with kubernetes-validate). For
real: a jupyter_server configured as Kubeflow's notebook images run it (no token, NB_PREFIX base
URL), driven over its REST and kernel websocket API. `kubectl port-forward` is a stand-in script
that records its arguments and prints kubectl's "Forwarding from" line for that server; the
artifact commands (`kubectl exec`/`cp`) are checked as commands. Only on a real cluster: the
notebook controller, the image, the port-forward itself, and files in the store volume."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import requests
from controllers import serve_notebooks

from kfbox.sandbox.engines.kubernetes.notebooks import KubeArtifacts, KubeNotebooks
from kfbox.sandbox.engines.kubernetes.tools import Tools
from kfbox.sandbox.engines.kubernetes.workspace import namespace_object
from kfbox.sandbox.platform import StepFailure

NAMESPACE = "kfbox-run-nbtest"
PREFIX = f"/notebook/{NAMESPACE}/kfbox-notebook"

FAKE_KUBECTL = f"""#!{sys.executable}
import json, os, sys, time
with open(os.environ["KFBOX_TEST_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
print("Forwarding from 127.0.0.1:" + os.environ["KFBOX_TEST_FORWARD_PORT"] + " -> 8888",
      flush=True)
time.sleep(600)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory) -> Iterator[tuple[int, Path]]:
    """A real jupyter_server with the settings of Kubeflow's notebook images."""
    root = tmp_path_factory.mktemp("jupyter-root")
    port = free_port()
    off = {name: False for name in ("jupyterlab", "jupyter_lsp", "jupyter_server_terminals",
                                     "notebook_shim")}  # UI extensions: slow to load, unused
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
         "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={root}",
         "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.allow_origin=*",
         f"--ServerApp.base_url={PREFIX}/", f"--ServerApp.jpserver_extensions={off!r}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                requests.get(f"http://127.0.0.1:{port}{PREFIX}/api/status", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield port, root
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def notebooks(kubeflow, jupyter, tmp_path, monkeypatch, runner) -> KubeNotebooks:
    port, _ = jupyter
    kubectl = tmp_path / "bin" / "kubectl"
    kubectl.parent.mkdir()
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    monkeypatch.setenv("KFBOX_TEST_KUBECTL_LOG", str(tmp_path / "kubectl.log"))
    monkeypatch.setenv("KFBOX_TEST_FORWARD_PORT", str(port))
    serve_notebooks(kubeflow.double)
    kubeflow.kube.apply(namespace_object(NAMESPACE, "box"))
    tools = Tools(runner=runner, which={"kubectl": str(kubectl)})
    nb = KubeNotebooks(kubeflow.kube, NAMESPACE, tools, tmp_path / "kubeconfig",
                       tmp_path / "run", poll_s=0.05)
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
    cr = kubeflow.double.get("kubeflow.org/v1", "notebooks", NAMESPACE, "kfbox-notebook")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kfbox-notebook-0"},
           "spec": cr["spec"]["template"]["spec"]}
    kubernetes_validate.validate(pod, "1.32", strict=True)
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "store", "mountPath": "/mnt/store"}]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "kfbox-store"}


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
         "--", "find", "/mnt/store/r1/train", "-type", "f"],
        ["kubectl", "--kubeconfig", kubeconfig, "cp",
         f"{NAMESPACE}/kfbox-notebook-0:/mnt/store/r1/tune/t-0001", str(tmp_path / "model")],
    ]
