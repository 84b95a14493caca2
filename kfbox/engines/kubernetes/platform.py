"""The platform seam on Kubernetes for one journey run: its own namespace and model store,
and one object per concern (training, tuning, serving, images, notebooks, artifacts, tracking,
diagnostics). Built from what the engine passes in; it never reaches back into the engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kfbox.engines.kubernetes.artifacts import KubeArtifacts
from kfbox.engines.kubernetes.diagnostics import KubeDiagnostics
from kfbox.engines.kubernetes.hostdocker import HostDocker
from kfbox.engines.kubernetes.images import KubeImages
from kfbox.engines.kubernetes.kubeapi import KubeApi
from kfbox.engines.kubernetes.notebooks import KubeNotebooks
from kfbox.engines.kubernetes.nvkind import advertised_gpus
from kfbox.engines.kubernetes.pipelines import KubePipelines
from kfbox.engines.kubernetes.serving import KubeServing
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.kubernetes.tracking import KubeTracking
from kfbox.engines.kubernetes.training import TRAINING_RUNTIME, KubeTraining
from kfbox.engines.kubernetes.tuning import KubeTuning
from kfbox.engines.kubernetes.workspace import RunNamespace
from kfbox.engines.tutorials import RUNTIME_IMAGE_ENV


@dataclass(frozen=True)
class ClusterAccess:
    """What a run needs of the cluster and the host, as the engine set them up."""

    kube: KubeApi
    tools: Tools
    kubeconfig: Path | None
    sandbox: str
    registry: str
    """host:port[/path] the cluster pulls journey images from; empty when there is none."""
    cpus: float
    memory: str
    ca_bundle: Path | None = None
    gpu_runtime_class: str | None = None
    """RuntimeClass GPU pods must name (kind: `nvidia`); None where GPUs need none."""
    gpu_training_runtime: str = TRAINING_RUNTIME
    shared_store: bool = False
    """Refuse multi-node steps whose store claim is not ReadWriteMany (`existing`)."""


class KubePlatform:
    """The platform for one journey run: its own namespace, deleted on close unless kept."""

    def __init__(self, access: ClusterAccess, run_dir: Path) -> None:
        kube = access.kube
        self.access = access
        self.workspace = RunNamespace.create(kube, access.sandbox)
        ns = self.workspace.name
        resources = {"cpus": access.cpus, "memory": access.memory}
        self.training = KubeTraining(kube, ns, resources, access.gpu_training_runtime,
                                     shared_store=access.shared_store)
        self.tuning = KubeTuning(kube, ns, self.training)
        self.serving = KubeServing(kube, ns, access.tools, access.kubeconfig, resources,
                                   access.gpu_runtime_class)
        self.docker = HostDocker(access.tools)
        self.images = KubeImages(self.docker, access.registry)
        self.notebooks = KubeNotebooks(kube, ns, access.tools, access.kubeconfig,
                                       self._notebook_image, run_dir, resources=resources,
                                       environment=self._notebook_environment)
        self.artifacts = KubeArtifacts(self.notebooks)
        self.pipelines = KubePipelines(access.tools, access.kubeconfig)
        self.tracking = KubeTracking(kube, ns, access.tools, access.kubeconfig,
                                     self._tracking_image)
        self.diagnostics = KubeDiagnostics(kube, ns)

    @property
    def runtime_image(self) -> str:
        """The ML runtime scenario images build FROM, built on the host as on lite."""
        return self.docker.runtime_image(self.access.ca_bundle)

    def _notebook_image(self) -> str:
        """kfbox's notebook image (JupyterLab on the ML runtime, lite's), pushed where the
        cluster pulls from: the run's kernel has the Kubeflow SDK, KServe, torch and Optuna the
        tutorials use, as on lite."""
        return self.images.publish_own("jupyter", self.access.ca_bundle)

    def _notebook_environment(self) -> dict[str, str]:
        """The ML runtime as the cluster pulls it: the tutorials' training nodes, trials and
        model server run it (what the lite engine's notebook finds in the same variable)."""
        return {RUNTIME_IMAGE_ENV: self.images.publish_own("runtime", self.access.ca_bundle)}

    def _tracking_image(self) -> str:
        """kfbox's tracking server image (lite's), pushed where the cluster pulls from."""
        return self.images.publish_own("tracking", self.access.ca_bundle)

    def gpu_count(self) -> int:
        return max((advertised_gpus(n) for n in self.access.kube.list("v1", "Node")), default=0)

    def collect_diagnostics(self, dest: Path) -> None:
        self.diagnostics.collect(dest)

    def close(self, *, keep: bool = False) -> None:
        self.serving.close()
        self.tracking.close()
        self.notebooks.close()
        if not keep:
            self.notebooks.remove_access()
            self.workspace.delete()
