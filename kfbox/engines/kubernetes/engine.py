"""What the two Kubernetes engines share: the cluster connection, the component plan and its
installer, the record of what `up` did, status, capabilities and the platform seam. `kind.py`
(kfbox creates and deletes the cluster) and `existing.py` (someone else's cluster, never
touched beyond what kfbox created) are the two engines on it."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kfbox.engines.base import Capabilities, ComponentStatus, Engine, SandboxStatus
from kfbox.engines.kubernetes import adjust, notebook_access, nvkind, readiness
from kfbox.engines.kubernetes.bundle import bundle_catalog
from kfbox.engines.kubernetes.catalog import Catalog, Component, load_catalog
from kfbox.engines.kubernetes.hostdocker import HostDocker
from kfbox.engines.kubernetes.installer import Builtins, Installer, InstallResult
from kfbox.engines.kubernetes.kubeapi import KubeApi, KubeError, client_from_kubeconfig
from kfbox.engines.kubernetes.manifest_cache import ManifestCache
from kfbox.engines.kubernetes.platform import ClusterAccess, KubePlatform
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.tutorials import tutorial_checks
from kfbox.host import paths
from kfbox.host.config import SandboxSpec
from kfbox.host.docker_engine import LABEL, ROLE_LABEL
from kfbox.host.errors import PreflightError, UsageError
from kfbox.host.images.versions import RUNTIME_PACKAGES, installed_versions
from kfbox.host.preflight import Check
from kfbox.host.progress import Reporter
from kfbox.host.statefiles import StateFolder

TUTORIALS = Path(__file__).parent / "tutorials"
"""Notebooks a person follows to train, tune and serve with the Kubernetes backends of the
Kubeflow SDK and KServe's client; the certificate runs them in the run's Notebook."""

STATE_FILE = "kubernetes.json"


class KubernetesEngine(Engine):
    """A sandbox on a Kubernetes cluster; subclasses say whose cluster it is."""

    kind_cluster: bool
    """True when kfbox made the cluster (kind-only components are installed)."""

    def __init__(self, spec: SandboxSpec, *, tools: Tools | None = None,
                 catalog: Catalog | None = None, kube: KubeApi | None = None) -> None:
        super().__init__(spec)
        self.tools = tools or Tools()
        self.docker = HostDocker(self.tools)
        # A bundle brings its own lock, every hash filled in.
        self.catalog = catalog or (bundle_catalog(spec.from_bundle) if spec.from_bundle
                                   else load_catalog())
        self._kube = kube
        self.state = StateFolder(spec.name)

    # ---- connection ------------------------------------------------------------------------

    @property
    @abstractmethod
    def kubeconfig(self) -> Path | None:
        """The kubeconfig kfbox and kubectl reach the cluster with."""

    def kube(self) -> KubeApi:
        """A client for the cluster; UsageError (exit 2) when the kubeconfig points nowhere."""
        if self._kube is None:
            self._kube = KubeApi(client_from_kubeconfig(self.kubeconfig))
        try:
            self._kube.server_version()
        except KubeError as exc:
            raise UsageError(f"kubeconfig {str(self.kubeconfig)!r}: {exc}",
                             fix="check the cluster is running and the kubeconfig's server "
                                 "address (`kubectl cluster-info`)") from None
        return self._kube

    # ---- preflight -------------------------------------------------------------------------

    def tool_check(self, tool: str) -> Check:
        try:
            return Check(tool, "pass", self.tools.path(tool))
        except PreflightError as exc:
            return Check(tool, "fail", str(exc), fix=exc.fix or "")

    def git_check(self) -> list[Check]:
        """kustomize clones a remote base with git: needed unless every kustomize target of
        the plan is already verified in the cache or the bundle."""
        cache = self.manifest_cache()
        needed = [m for comp in self.plan(gpu=True) for m in comp.manifests
                  if m.kustomize and not cache.available(m)]
        return [self.tool_check("git")] if needed else []

    # ---- the plan and its install ----------------------------------------------------------

    def plan(self, gpu: bool) -> list[Component]:
        return self.catalog.plan(self.catalog.platform(self.spec.kubernetes.platform, gpu=gpu,
                                                      kind=self.kind_cluster))

    def manifest_cache(self) -> ManifestCache:
        return ManifestCache(
            cache=paths.cache_dir("manifests"), tools=self.tools,
            trust_on_first_use=self.spec.kubernetes.trust_on_first_use,
            offline=self.spec.from_bundle / "manifests" if self.spec.from_bundle else None,
        )

    def builtins(self) -> Builtins:
        """Objects kfbox renders itself, by the name the lock gives them."""
        return {"kserve-namespace": adjust.kserve_namespace,
                "nvidia-runtime-class": lambda: [nvkind.runtime_class()],
                "nvidia-training-runtime": lambda: [nvkind.training_runtime()]}

    def installer(self, reporter: Reporter) -> Installer:
        return Installer(self.kube(), self.manifest_cache(), self.builtins(), reporter)

    def record(self, gpu: bool, results: list[InstallResult], **extra: list[str]) -> None:
        self.state.write_json(STATE_FILE, {
            "engine": self.spec.engine, "gpu": gpu,
            "components": [c.name for c in self.plan(gpu)],
            "install": [asdict(r) for r in results], **extra,
        })

    def recorded(self) -> dict[str, Any]:
        recorded = self.state.read_json(STATE_FILE)
        return recorded if isinstance(recorded, dict) else {}

    # ---- status and capabilities -----------------------------------------------------------

    def component_status(self) -> list[ComponentStatus]:
        kube = self.kube()
        found = []
        for name in self.recorded().get("components", []):
            comp = self.catalog.components[name]
            waiting = readiness.pending(kube, comp.ready, [])
            found.append(ComponentStatus(
                name, not waiting, "ready" if not waiting else "waiting for " + waiting[0],
                image=comp.version))
        return found

    def sandbox_status(self, components: list[ComponentStatus]) -> SandboxStatus:
        record = self.recorded()
        major, minor = self.kube().server_version()
        healthy = all(c.healthy for c in components)
        return SandboxStatus(self.spec.name, self.spec.engine,
                             "running" if healthy else "degraded", components,
                             facts={"kubernetes": f"{major}.{minor}", "gpu": record.get("gpu"),
                                    "install": record.get("install", [])})

    def software(self) -> dict[str, str]:
        """The Kubernetes server version, each installed component's release, the notebook
        image, the ML runtime's packages and the Kubeflow SDK that drives the journey."""
        major, minor = self.kube().server_version()
        labels = {LABEL: self.spec.name, ROLE_LABEL: "probe"}
        return {"kubernetes": f"{major}.{minor}",
                **{name: self.catalog.components[name].version
                   for name in self.recorded().get("components", [])},
                # What the run's Notebook runs, whatever kind's sandbox notebook is given.
                "notebook-image": "kfbox/jupyter (JupyterLab on the ML runtime below)",
                **self.docker.runtime_versions(RUNTIME_PACKAGES, labels),
                **installed_versions(["kubeflow"])}

    def gpus(self) -> int:
        return sum(nvkind.advertised_gpus(n) for n in self.kube().list("v1", "Node"))

    def capabilities(self) -> Capabilities:
        return Capabilities(
            registry=self.access().registry,
            model_store="a PersistentVolumeClaim (kfbox-store) in each run's namespace",
            gpus=self.gpus(),
            tutorials=tutorial_checks(TUTORIALS),
            boundary=notebook_access.BOUNDARY,
            software=self.software(),
        )

    # ---- the platform seam -----------------------------------------------------------------

    @abstractmethod
    def access(self) -> ClusterAccess:
        """What a journey run needs of this cluster."""

    def cluster_access(self, registry: str, *, gpu_runtime_class: str | None = None,
                       gpu_training_runtime: str | None = None) -> ClusterAccess:
        spec = self.spec
        extra = {"gpu_training_runtime": gpu_training_runtime} if gpu_training_runtime else {}
        return ClusterAccess(
            kube=self.kube(), tools=self.tools, kubeconfig=self.kubeconfig, sandbox=spec.name,
            registry=registry,
            cpus=spec.resources.cpus, memory=spec.resources.memory, ca_bundle=spec.ca_bundle,
            gpu_runtime_class=gpu_runtime_class, shared_store=not self.kind_cluster, **extra)

    def platform(self, run_dir: Path) -> KubePlatform:
        return KubePlatform(self.access(), run_dir)
