"""Notebooks on Kubernetes: a `Notebook` CR, run through the Jupyter server API over a
port-forward; the run's model store is mounted in it, which also serves the artifacts."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kubernetes import client

from kfbox.sandbox.clients.jupyter import JupyterClient
from kfbox.sandbox.engines.kubernetes.kubeapi import KubeApi
from kfbox.sandbox.engines.kubernetes.portforward import PortForward
from kfbox.sandbox.engines.kubernetes.tools import Tools
from kfbox.sandbox.engines.kubernetes.workspace import STORE_CLAIM
from kfbox.sandbox.platform import MODEL_STORE_MOUNT, NotebookResult, StepFailure

NOTEBOOK_API = "kubeflow.org/v1"
NOTEBOOK_NAME = "kfbox-notebook"
NOTEBOOK_IMAGE = os.environ.get("KFBOX_NOTEBOOK_IMAGE",
                                "kubeflownotebookswg/jupyter-scipy:v1.10.0")
READY_TIMEOUT_S = 600


def notebook_object(namespace: str, image: str = NOTEBOOK_IMAGE) -> dict[str, Any]:
    """The Notebook CR; its pod template is built with the kubernetes typed models."""
    pod = client.V1PodSpec(
        containers=[client.V1Container(
            name=NOTEBOOK_NAME, image=image,
            volume_mounts=[client.V1VolumeMount(name="store", mount_path=MODEL_STORE_MOUNT)],
        )],
        volumes=[client.V1Volume(name="store", persistent_volume_claim=client.
                                 V1PersistentVolumeClaimVolumeSource(claim_name=STORE_CLAIM))],
    )
    return {
        "apiVersion": NOTEBOOK_API, "kind": "Notebook",
        "metadata": {"name": NOTEBOOK_NAME, "namespace": namespace},
        "spec": {"template": {"spec": client.ApiClient().sanitize_for_serialization(pod)}},
    }


@dataclass
class KubeNotebooks:
    """The Notebook CR's Jupyter server, driven with JupyterClient over a port-forward."""

    kube: KubeApi
    namespace: str
    tools: Tools
    kubeconfig: Path | None
    run_dir: Path
    """Where executed notebooks are saved: never beside the scenario's own (package data)."""
    poll_s: float = 2
    forward: PortForward | None = None
    client: JupyterClient | None = None

    def pod(self) -> str:
        return f"{NOTEBOOK_NAME}-0"

    def ensure_server(self) -> None:
        if self.forward is not None:
            return
        self.kube.apply(notebook_object(self.namespace))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            status = (self.kube.get(NOTEBOOK_API, "Notebook", NOTEBOOK_NAME, self.namespace)
                      or {}).get("status") or {}
            if status.get("readyReplicas", 0) >= 1:
                break
            if time.monotonic() > deadline:
                raise StepFailure(f"notebook server not ready after {READY_TIMEOUT_S}s")
            time.sleep(self.poll_s)
        self.forward = PortForward.start(self.tools, self.kubeconfig, self.namespace,
                                         f"svc/{NOTEBOOK_NAME}", 80)
        # The notebook controller serves Jupyter under NB_PREFIX=/notebook/<ns>/<name>, without
        # a token: Kubeflow's notebook images leave authentication to the cluster's mesh.
        self.client = JupyterClient(
            f"{self.forward.url}/notebook/{self.namespace}/{NOTEBOOK_NAME}", None)
        self.client.wait_ready()

    def _client(self) -> JupyterClient:
        self.ensure_server()
        assert self.client is not None
        return self.client

    def execute(self, notebook: Path, remote_dir: str, *, timeout_s: float) -> NotebookResult:
        # As the lite engine: one folder per journey (remote_dir ends with its run id), where
        # the plugin collects executed notebooks for the diagnostics.
        journey = PurePosixPath(remote_dir.strip("/")).name
        executed = self.run_dir / journey / "notebook" / f"{notebook.stem}.executed.ipynb"
        return self._client().execute_notebook(notebook, remote_dir, executed, timeout_s)

    def fetch(self, remote_dir: str, dest: Path) -> list[Path]:
        return self._client().fetch_dir(remote_dir, dest)

    def close(self) -> None:
        if self.forward is not None:
            self.forward.stop()
            self.forward = None
            self.client = None


@dataclass
class KubeArtifacts:
    """The model store read through the notebook pod, which mounts the same volume."""

    notebooks: KubeNotebooks

    def _kubectl(self, *args: str) -> str:
        argv = [*args]
        if self.notebooks.kubeconfig is not None:
            argv = ["--kubeconfig", str(self.notebooks.kubeconfig), *argv]
        return self.notebooks.tools("kubectl", *argv).stdout

    def list(self, prefix: str = "") -> list[str]:
        self.notebooks.ensure_server()
        root = f"{MODEL_STORE_MOUNT}/{prefix}".rstrip("/")
        out = self._kubectl("exec", "-n", self.notebooks.namespace, self.notebooks.pod(), "--",
                            "find", root, "-type", "f")
        return sorted(line.removeprefix(MODEL_STORE_MOUNT + "/") for line in out.split())

    def fetch(self, key: str, dest: Path) -> Path:
        self.notebooks.ensure_server()
        self._kubectl("cp", f"{self.notebooks.namespace}/{self.notebooks.pod()}:"
                      f"{MODEL_STORE_MOUNT}/{key}", str(dest))
        return dest
