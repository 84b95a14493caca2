"""Notebooks on Kubernetes: a `Notebook` CR, run through the Jupyter server API over a
port-forward; the run's model store is mounted in it, which also serves the artifacts."""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from kubernetes import client

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


def jupyter_session() -> requests.Session:
    """A Jupyter API session. Kubeflow's notebook images run without a token (the cluster's
    mesh authenticates), so jupyter_server asks every write for an XSRF token: send the
    double-submit pair, one random value as both the `_xsrf` cookie and the X-XSRFToken header."""
    session = requests.Session()
    token = secrets.token_hex(16)
    session.cookies.set("_xsrf", token)
    session.headers["X-XSRFToken"] = token
    return session


@dataclass
class KubeNotebooks:
    kube: KubeApi
    namespace: str
    tools: Tools
    kubeconfig: Path | None
    poll_s: float = 2
    forward: PortForward | None = None
    session: requests.Session = field(default_factory=jupyter_session)

    @property
    def base(self) -> str:
        # The notebook controller serves Jupyter under NB_PREFIX=/notebook/<ns>/<name>.
        assert self.forward is not None
        return f"{self.forward.url}/notebook/{self.namespace}/{NOTEBOOK_NAME}"

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

    def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}/api/{path}", timeout=60, **kwargs)
        if response.status_code >= 400:
            try:
                why = response.json().get("message") or ""
            except ValueError:
                why = ""
            raise StepFailure(f"Jupyter API {method} {path}: HTTP {response.status_code}"
                              + (f": {why.splitlines()[0]}" if why else ""))
        return response.json() if response.content else None

    def execute(self, notebook: Path, remote_dir: str, *, timeout_s: float) -> NotebookResult:
        import websocket

        self.ensure_server()
        started = time.monotonic()
        document = json.loads(notebook.read_text())
        remote = f"{remote_dir.strip('/')}/{notebook.name}"
        self._make_dirs(remote_dir)
        # The kernel starts in remote_dir (a path under the server's root), whatever the
        # server's own working directory is.
        kernel = self._api("POST", "kernels", json={"name": "python3",
                                                    "path": remote_dir.strip("/")})
        ws_url = self.base.replace("http://", "ws://") + f"/api/kernels/{kernel['id']}/channels"
        ws = websocket.create_connection(ws_url, timeout=timeout_s)
        cells_run = 0
        try:
            for cell in document["cells"]:
                if cell["cell_type"] != "code":
                    continue
                cell["outputs"] = self._run_cell(ws, "".join(cell["source"]), timeout_s)
                cells_run += 1
        finally:
            ws.close()
            self._api("DELETE", f"kernels/{kernel['id']}")
        self._api("PUT", f"contents/{remote}",
                  json={"type": "notebook", "format": "json", "content": document})
        executed = notebook.with_name(notebook.stem + ".executed.ipynb")
        executed.write_text(json.dumps(document, indent=1))
        return NotebookResult(executed, cells_run, time.monotonic() - started)

    def _make_dirs(self, remote_dir: str) -> None:
        """Each folder of the path in turn: the contents API creates one level at a time."""
        parts = [p for p in remote_dir.split("/") if p]
        for depth in range(1, len(parts) + 1):
            self._api("PUT", "contents/" + "/".join(parts[:depth]), json={"type": "directory"})

    @staticmethod
    def _run_cell(ws: Any, code: str, timeout_s: float) -> list[dict[str, Any]]:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "kfbox",
                       "session": msg_id, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False},
        }))
        outputs: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                outputs.append({"output_type": "stream", "name": content["name"],
                                "text": content["text"]})
            elif kind in ("execute_result", "display_data"):
                outputs.append({"output_type": kind, "data": content["data"], "metadata": {},
                                **({"execution_count": content["execution_count"]}
                                   if kind == "execute_result" else {})})
            elif kind == "error":
                raise StepFailure(f"notebook cell failed: {content['ename']}: "
                                  f"{content['evalue']}", logs="\n".join(content["traceback"]))
            elif kind == "execute_reply":
                return outputs
        raise StepFailure(f"notebook cell did not finish in {timeout_s:.0f}s")

    def fetch(self, remote_dir: str, dest: Path) -> list[Path]:
        self.ensure_server()
        listing = self._api("GET", f"contents/{remote_dir.strip('/')}")
        dest.mkdir(parents=True, exist_ok=True)
        fetched = []
        for item in listing.get("content") or []:
            if item["type"] == "directory":
                continue
            body = self._api("GET", f"contents/{item['path']}", params={"format": "text"})
            target = dest / item["name"]
            content = body["content"]
            target.write_text(content if isinstance(content, str) else json.dumps(content))
            fetched.append(target)
        return fetched

    def close(self) -> None:
        if self.forward is not None:
            self.forward.stop()
            self.forward = None


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
