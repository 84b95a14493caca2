"""Notebooks on Kubernetes: a `Notebook` in the run's namespace with the run's model store
mounted, driven with JupyterClient over a port-forward, with its own Jupyter token, running as
the notebook's service account (notebook_access) so that the tutorials it runs may start
TrainJobs, Experiments and InferenceServices in that namespace and nothing else."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kfbox.engines.jupyter import JupyterClient
from kfbox.engines.kubernetes import jupyter
from kfbox.engines.kubernetes.kubeapi import KubeApi, KubeError
from kfbox.engines.kubernetes.notebook_access import SERVICE_ACCOUNT, access_objects
from kfbox.engines.kubernetes.portforward import PortForward
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.kubernetes.workspace import STORE_CLAIM
from kfbox.engines.platform import MODEL_STORE_MOUNT, NotebookResult, StepFailure

NOTEBOOK_NAME = "kfbox-notebook"
READY_TIMEOUT_S = 600


@dataclass
class KubeNotebooks:
    """The run's Notebook CR, its Jupyter server driven with JupyterClient over a port-forward."""

    kube: KubeApi
    namespace: str
    tools: Tools
    kubeconfig: Path | None
    image: Callable[[], str]
    """The Notebook's image, asked for once, when the server starts: the platform's builds
    and pushes kfbox's notebook image, so the kernel runs the ML runtime the tutorials need."""
    run_dir: Path
    """Where executed notebooks are saved: never beside the scenario's own (package data)."""
    resources: dict[str, Any] = field(default_factory=dict)
    """cpus and memory of the sandbox (jupyter.notebook_resources); none when empty."""
    poll_s: float = 2
    environment: Callable[[], dict[str, str]] = dict
    """What the notebook's container gets besides the store's place (KFBOX_STORE,
    KFBOX_STORE_CLAIM): the tutorials read the ML runtime's image there. Called once, when the
    server starts: finding that image may build and push it."""
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    forward: PortForward | None = None
    client: JupyterClient | None = None

    def pod(self) -> str:
        """The notebook controller runs a Notebook as a StatefulSet of one."""
        return f"{NOTEBOOK_NAME}-0"

    def ensure_server(self) -> None:
        if self.forward is not None:
            return
        env = {jupyter.STORE_ENV: MODEL_STORE_MOUNT, jupyter.STORE_CLAIM_ENV: STORE_CLAIM,
               **self.environment()}
        try:
            for obj in access_objects(self.namespace):
                self.kube.apply(obj)
            self.kube.apply(jupyter.token_secret(self.namespace, self.token))
            self.kube.apply(jupyter.notebook_object(
                self.namespace, NOTEBOOK_NAME, self.image(), {STORE_CLAIM: MODEL_STORE_MOUNT},
                jupyter.notebook_resources(**self.resources) if self.resources else None,
                service_account=SERVICE_ACCOUNT, env=env))
        except KubeError as exc:
            raise StepFailure(f"Notebook {NOTEBOOK_NAME} refused: {exc}") from exc
        deadline = time.monotonic() + READY_TIMEOUT_S
        while jupyter.ready_replicas(self.kube, self.namespace, NOTEBOOK_NAME) < 1:
            if time.monotonic() > deadline:
                raise StepFailure(f"notebook server not ready after {READY_TIMEOUT_S}s")
            time.sleep(self.poll_s)
        self.forward = PortForward.start(self.tools, self.kubeconfig, self.namespace,
                                         f"svc/{NOTEBOOK_NAME}", jupyter.SERVICE_PORT)
        self.client = JupyterClient(
            self.forward.url + jupyter.prefix(self.namespace, NOTEBOOK_NAME), self.token)
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

    def remove_access(self) -> None:
        """Delete what the notebook's access made outside its namespace (its ClusterRole and
        binding); deleting the namespace removes the rest."""
        for obj in access_objects(self.namespace):
            if "namespace" not in obj["metadata"]:
                self.kube.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
