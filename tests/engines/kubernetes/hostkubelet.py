"""A kubelet for training-node Pods that runs each node's real container command as a host
process, all nodes at once, with the environment the Pod resolves to.

The node Pods come from the TrainJob stand-in (controllers.TrainJobs) with the env the
Trainer's torch plugin sets (PET_*); the command is whatever kfbox asked the Trainer to run. Only
what a container would see differently on this host is rewritten: the image's files and the
volumes are folders here, `python` is this interpreter, and node 0's address (a headless
Service name in the cluster) is 127.0.0.1 on a free port. So a test reads the process group
that torch.distributed really formed, not one the stand-in made up.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import upstream
from controllers import COMPLETION_INDEX, Run

from tests.support.net import free_port

PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")


def host_path() -> str:
    """PATH with this interpreter's folder first: the image's `python` and `torchrun` are this
    environment's here."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def rewrite(text: str, paths: dict[str, str]) -> str:
    """`text` with each container path replaced by its host path, the longest first."""
    for inside, host in sorted(paths.items(), key=lambda p: -len(p[0])):
        text = text.replace(inside, host)
    return text


@dataclass
class HostKubelet:
    image_files: dict[str, str]
    """The image's files this job uses: path inside the image → content."""
    root: Path
    """Where the image's files and the Pods' volumes live on this host."""
    timeout_s: float = 300

    def _paths(self, pod: dict[str, Any], node: dict[str, Any]) -> dict[str, str]:
        """Container path → host path: the image's files, then each mounted volume."""
        mapping = {}
        for path, content in self.image_files.items():
            host = self.root / "image" / path.lstrip("/")
            host.parent.mkdir(parents=True, exist_ok=True)
            host.write_text(content)
            mapping[path] = str(host)
        empty_dirs = {v["name"] for v in pod["spec"].get("volumes") or [] if "emptyDir" in v}
        for mount in node.get("volumeMounts") or []:
            # An emptyDir is the pod's own; any other volume is shared by every pod using it.
            host = (self.root / "pods" / pod["metadata"]["name"] / "volumes"
                    if mount["name"] in empty_dirs else self.root / "volumes") / mount["name"]
            host.mkdir(parents=True, exist_ok=True)
            mapping[mount["mountPath"]] = str(host)
        return mapping

    def _env(self, pod: dict[str, Any], node: dict[str, Any], port: int) -> dict[str, str]:
        """The container's env as the kubelet resolves it (values, the completion-index
        fieldRef), with node 0 reached on this host."""
        env = {}
        for var in node.get("env") or []:
            if "value" in var:
                env[var["name"]] = var["value"]
            elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == \
                    f"metadata.annotations['{COMPLETION_INDEX}']":
                env[var["name"]] = pod["metadata"]["annotations"][COMPLETION_INDEX]
        env["PET_MASTER_ADDR"] = "127.0.0.1"
        env["PET_MASTER_PORT"] = str(port)
        return env

    def __call__(self, pods: list[dict[str, Any]]) -> list[Run]:
        port = free_port()
        processes, mappings = [], []
        for pod in pods:
            node = next(c for c in pod["spec"]["containers"] if c["name"] == "node")
            paths = self._paths(pod, node)
            mappings.append(paths)
            argv = [rewrite(a, paths) for a in [*node["command"], *node.get("args", [])]]
            if PYTHON.match(argv[0]):
                argv[0] = sys.executable
            env = {k: rewrite(v, paths) for k, v in self._env(pod, node, port).items()}
            # gloo picks its interface from the hostname, which may not resolve on this host.
            env |= {"PATH": host_path(), "HOME": str(self.root), "GLOO_SOCKET_IFNAME": "lo"}
            # The container's working directory: the Kubeflow SDK's function trainer writes the
            # function's file there before torchrun runs it.
            workdir = self.root / "pods" / pod["metadata"]["name"]
            workdir.mkdir(parents=True, exist_ok=True)
            processes.append(subprocess.Popen(argv, env=env, cwd=workdir,
                                              stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True))
        runs = []
        for pod, process, paths in zip(pods, processes, mappings, strict=True):
            try:
                out, _ = process.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                out, _ = process.communicate()
            runs.append((self._collected(pod, paths) or out, process.returncode == 0))
        return runs

    @staticmethod
    def _collected(pod: dict[str, Any], paths: dict[str, str]) -> str | None:
        """What Katib's collector sidecar echoes, for a pod that has one: the metrics file the
        primary container's output was sent to (TrainJobs files it as the sidecar's log)."""
        facts = upstream.component("katib")
        if not any(c["name"] == facts["metrics_collector_container"]
                   for c in pod["spec"]["containers"]):
            return None
        folder, _, name = facts["metrics_file"].rpartition("/")
        metrics = Path(paths[folder]) / name if folder in paths else None
        return metrics.read_text() if metrics and metrics.is_file() else ""
