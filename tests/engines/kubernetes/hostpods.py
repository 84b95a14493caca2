"""The pods a person's notebook work needs, run as host processes for the API double: the
Notebook's pod (a real jupyter_server with the pod's resolved env, holding its service
account's credentials), a KServe predictor (the custom container's command), and the cluster's
network between them (its DNS names of Services, reached through an HTTP proxy that the
notebook's kernel is given).

Only what a container would see differently on this host is rewritten: a claim's mount path is a
folder here, `python` is this interpreter, a container port is a free host port (KServe's
ModelServer takes `--http_port`), and the in-cluster credentials (the service account's token,
the API server's address) are a kubeconfig, which the Kubeflow SDK and KServe's client read
outside a pod as they read the in-cluster files inside one (`is_running_in_k8s`). A real cluster
adds TLS to the API server and a real DNS; neither is under test here.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import upstream
import yaml
from hostkubelet import host_path, rewrite
from kapi_double import KubeApiDouble

from kfbox.engines.kubernetes import jupyter
from tests.support.net import free_port, free_ports

ISVC_API = "serving.kserve.io/v1beta1"
UI_EXTENSIONS = ("jupyterlab", "jupyter_lsp", "jupyter_server_terminals", "notebook_shim")
"""Server extensions a notebook image loads that no test drives: slow to load, left off."""


def server_argv(container: dict[str, Any], env: dict[str, str], root: Path,
                port: int) -> list[str]:
    """The Notebook container's `jupyter lab` arguments as the kubelet expands them
    (`$(VAR)` from its env), for this host's jupyter_server: only the folder, the address and
    the port differ."""
    assert container["command"] == [jupyter.JUPYTER, "lab"]
    args = []
    for arg in container["args"]:
        for name, value in env.items():
            arg = arg.replace(f"$({name})", value)
        option = arg.split("=", 1)[0]
        arg = {"--notebook-dir": f"--ServerApp.root_dir={root}", "--ip": "--ip=127.0.0.1",
               "--port": f"--port={port}"}.get(option, arg)
        args.append(arg)
    off = dict.fromkeys(UI_EXTENSIONS, False)
    return [sys.executable, "-m", "jupyter_server", "--allow-root", *args,
            f"--ServerApp.jpserver_extensions={off!r}"]


def wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing answered at {url} after {timeout_s:.0f}s")


@dataclass
class ClusterNetwork:
    """The cluster's DNS names of Services, as an HTTP proxy on 127.0.0.1: a request for
    `http://<service>.<namespace>.svc.cluster.local/...` goes to the host port of the process
    behind that Service; any other name is a 502."""

    services: dict[str, int] = field(default_factory=dict)
    """host name → the host port behind it"""
    url: str = ""

    @contextmanager
    def serve(self) -> Iterator[ClusterNetwork]:
        services = self.services

        class Forward(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                target = urlsplit(self.path)
                port = services.get(target.hostname or "")
                if port is None:
                    self.send_error(502, f"no Service answers at {target.hostname}")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream_conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                path = target.path + (f"?{target.query}" if target.query else "")
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("proxy-connection", "connection", "host")}
                upstream_conn.request(self.command, path, body=body or None, headers=headers)
                answer = upstream_conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream_conn.close()

            do_GET = do_POST = do_DELETE = do_PUT = _forward

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


@dataclass
class HostPods:
    """The kubelet for the Notebook's pod and KServe's predictors: each runs as a host process
    once its object is written, and stops when its object is deleted (or at `stop`)."""

    double: KubeApiDouble
    api_url: str
    root: Path
    """Where claims (claims/<name>) and the notebook's home live on this host."""
    network: ClusterNetwork
    tokens: dict[str, str]
    """service account (namespace/name) → the token the double knows it by"""
    notebook_port: int = field(default_factory=free_port)
    processes: dict[tuple[str, str, str], subprocess.Popen] = field(default_factory=dict)
    """(kind, namespace, name) → the process running that object's pod"""

    def install(self) -> HostPods:
        self.double.on_write.append(self._written)
        self.double.after_request.append(self._reap)
        return self

    def claim(self, name: str) -> Path:
        folder = self.root / "claims" / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _mounts(self, spec: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        """Container path → host folder, for each claim the container mounts."""
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                  for v in spec.get("volumes") or [] if "persistentVolumeClaim" in v}
        return {m["mountPath"]: str(self.claim(claims[m["name"]]))
                for m in container.get("volumeMounts") or [] if m["name"] in claims}

    def _env(self, namespace: str, container: dict[str, Any],
             mounts: dict[str, str]) -> dict[str, str]:
        """The container's env as the kubelet resolves it: values, a Secret's key, the pod's
        namespace (downward API)."""
        env = {}
        for var in container.get("env") or []:
            source = var.get("valueFrom") or {}
            if "value" in var:
                env[var["name"]] = rewrite(var["value"], mounts)
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                secret = self.double.get("v1", "secrets", namespace, ref["name"]) or {}
                env[var["name"]] = (secret.get("stringData") or {})[ref["key"]]
            elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
                env[var["name"]] = namespace
        return env

    def _kubeconfig(self, namespace: str, account: str) -> Path:
        """The pod's service-account credentials and the API server's address, written as a
        kubeconfig (the in-cluster files' stand-in), its context in the pod's namespace."""
        token = self.tokens[f"{namespace}/{account}"]
        path = self.root / "kubeconfig" / namespace / account
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "pod",
            "clusters": [{"name": "cluster", "cluster": {"server": self.api_url}}],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [{"name": "pod", "context": {"cluster": "cluster", "user": account,
                                                     "namespace": namespace}}]}))
        return path

    def _written(self, plural: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if plural == "notebooks":
            if ("Notebook", meta["namespace"], meta["name"]) not in self.processes:
                self._start_notebook(obj)
        elif plural == "inferenceservices":
            # Its pod exists once KServe made the predictor's Deployment: Ready (the KServe
            # stand-in's verdict, which runs first) says so.
            stored = self.double.get(ISVC_API, plural, meta["namespace"], meta["name"]) or {}
            ready = any(c["type"] == "Ready" and c["status"] == "True"
                        for c in (stored.get("status") or {}).get("conditions") or [])
            if ready and ("InferenceService", meta["namespace"], meta["name"]) \
                    not in self.processes:
                self._start_predictor(stored)

    def _start_notebook(self, notebook: dict[str, Any]) -> None:
        meta = notebook["metadata"]
        spec = notebook["spec"]["template"]["spec"]
        container = spec["containers"][0]
        mounts = self._mounts(spec, container)
        env = self._env(meta["namespace"], container, mounts)
        prefix_env = upstream.component("notebook-controller")["prefix_env"]
        env[prefix_env] = jupyter.prefix(meta["namespace"], meta["name"])
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        account = spec.get("serviceAccountName") or "default"
        env |= {"PATH": host_path(), "HOME": str(home),
                "KUBECONFIG": str(self._kubeconfig(meta["namespace"], account)),
                "HTTP_PROXY": self.network.url, "NO_PROXY": "127.0.0.1,localhost"}
        argv = server_argv(container, env, home, self.notebook_port)
        log = (self.root / "notebook.log").open("w")
        self.processes["Notebook", meta["namespace"], meta["name"]] = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"http://127.0.0.1:{self.notebook_port}{env[prefix_env]}/api/status")

    def _start_predictor(self, isvc: dict[str, Any]) -> None:
        meta = isvc["metadata"]
        spec = isvc["spec"]["predictor"]
        container = spec["containers"][0]
        mounts = self._mounts(spec, container)
        argv = [rewrite(a, mounts)
                for a in [*container.get("command", []), *container.get("args", [])]]
        if argv[0] == "python":
            argv[0] = sys.executable
        port, grpc_port = free_ports(2)
        argv += ["--http_port", str(port), "--grpc_port", str(grpc_port)]
        env = self._env(meta["namespace"], container, mounts) | {
            "PATH": host_path(), "HOME": str(self.root)}
        log = (self.root / f"predictor-{meta['name']}.log").open("w")
        self.processes["InferenceService", meta["namespace"], meta["name"]] = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        suffix = upstream.component("kserve")["predictor_service_suffix"]
        self.network.services[
            f"{meta['name']}{suffix}.{meta['namespace']}.svc.cluster.local"] = port

    def _reap(self) -> None:
        plurals = {"Notebook": ("kubeflow.org/v1", "notebooks"),
                   "InferenceService": (ISVC_API, "inferenceservices")}
        for key, process in list(self.processes.items()):
            kind, namespace, name = key
            if self.double.get(*plurals[kind], namespace, name) is None:
                self._stop(key, process)

    def _stop(self, key: tuple[str, str, str], process: subprocess.Popen) -> None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.processes.pop(key, None)

    def running(self, kind: str) -> list[str]:
        return [name for (k, _, name), p in self.processes.items()
                if k == kind and p.poll() is None]

    def stop(self) -> None:
        for key, process in list(self.processes.items()):
            self._stop(key, process)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.root.glob("*.log")))
