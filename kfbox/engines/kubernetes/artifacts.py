"""The model store read through the run's notebook pod, which mounts the same claim."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kfbox.engines.kubernetes.notebooks import KubeNotebooks
from kfbox.engines.platform import MODEL_STORE_MOUNT


@dataclass
class KubeArtifacts:
    notebooks: KubeNotebooks

    def _kubectl(self, *args: str) -> str:
        argv = [*args]
        if self.notebooks.kubeconfig is not None:
            argv = ["--kubeconfig", str(self.notebooks.kubeconfig), *argv]
        return self.notebooks.tools("kubectl", *argv).stdout

    def list(self, prefix: str = "") -> list[str]:
        """Every file under `prefix` in the store; empty when the folder does not exist."""
        self.notebooks.ensure_server()
        root = f"{MODEL_STORE_MOUNT}/{prefix}".rstrip("/")
        # A folder nothing was saved under yet lists as empty, not as find's error.
        out = self._kubectl("exec", "-n", self.notebooks.namespace, self.notebooks.pod(), "--",
                            "sh", "-c", 'if [ -d "$1" ]; then find "$1" -type f; fi', "sh",
                            root)
        return sorted(line.removeprefix(MODEL_STORE_MOUNT + "/") for line in out.split())

    def fetch(self, key: str, dest: Path) -> Path:
        self.notebooks.ensure_server()
        self._kubectl("cp", f"{self.notebooks.namespace}/{self.notebooks.pod()}:"
                      f"{MODEL_STORE_MOUNT}/{key}", str(dest))
        return dest
