"""The kind cluster's lifecycle: create from the generated config, kubeconfig, nodes, delete."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kfbox.engines.kubernetes import kindconfig
from kfbox.engines.kubernetes.tools import CommandFailed, Tools
from kfbox.host.config import SandboxSpec
from kfbox.host.errors import KfboxError
from kfbox.host.statefiles import StateFolder

CREATE_WAIT = "180s"


@dataclass
class KindCluster:
    spec: SandboxSpec
    tools: Tools
    state: StateFolder
    """The sandbox's state folder: the kind config and the kubeconfig are written here."""

    @property
    def name(self) -> str:
        return kindconfig.cluster_name(self.spec)

    @property
    def kubeconfig(self) -> Path:
        return self.state.file("kubeconfig")

    def exists(self) -> bool:
        listed = self.tools("kind", "get", "clusters")
        return self.name in listed.stdout.split()

    def create(self, *, gpu: bool, node_image: str = kindconfig.NODE_IMAGE) -> None:
        """Create the cluster unless it exists; a failed create is deleted again so nothing
        half-made is left behind."""
        if self.exists():
            return
        self.state.write_text("kind-config.yaml", kindconfig.render(
            kindconfig.kind_config(self.spec, gpu=gpu, node_image=node_image)))
        config = self.state.file("kind-config.yaml")
        try:
            self.tools("kind", "create", "cluster", "--name", self.name, "--config", str(config),
                       "--kubeconfig", str(self.kubeconfig), "--wait", CREATE_WAIT, timeout=900)
        except CommandFailed as exc:
            self.tools("kind", "delete", "cluster", "--name", self.name, check=False)
            raise KfboxError(f"kind could not create cluster {self.name!r}: {exc}",
                             fix="`kfbox doctor` checks the host; see `docker logs "
                                 f"{self.name}-control-plane`") from exc

    def write_kubeconfig(self) -> Path:
        """The cluster's kubeconfig in the state folder, readable by the owner only."""
        text = self.tools("kind", "get", "kubeconfig", "--name", self.name).stdout
        self.state.write_text("kubeconfig", text, private=True)
        return self.kubeconfig

    def nodes(self) -> list[str]:
        return self.tools("kind", "get", "nodes", "--name", self.name).stdout.split()

    def workload_nodes(self) -> list[str]:
        """The nodes that run workloads (and get GPUs): the workers, or the control plane."""
        nodes = self.nodes()
        workers = [n for n in nodes if not n.endswith("-control-plane")]
        return workers or nodes

    def load_image(self, image: str) -> None:
        """Copy an image from the host's Docker engine into every node (`kind load`)."""
        self.tools("kind", "load", "docker-image", image, "--name", self.name, timeout=1800)

    def delete(self) -> None:
        self.tools("kind", "delete", "cluster", "--name", self.name)
