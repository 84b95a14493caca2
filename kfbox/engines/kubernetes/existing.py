"""`--engine existing`: someone else's cluster, given by a kubeconfig. kfbox installs only the
profile's components the cluster does not have (judged by their objects: one that another
field manager owns marks the component present), waits for the ones it found without applying
anything to them, never applies over an object another manager owns, and `down` deletes only
the run namespaces it created; the cluster, and everything kfbox did not create in it, stay
as they were."""

from __future__ import annotations

from pathlib import Path

from kfbox.engines.base import EngineFeatures, SandboxStatus
from kfbox.engines.kubernetes.engine import KubernetesEngine
from kfbox.engines.kubernetes.installer import InstallResult
from kfbox.engines.kubernetes.kubeapi import KubeApi
from kfbox.engines.kubernetes.platform import ClusterAccess
from kfbox.engines.kubernetes.workspace import RUN_LABEL
from kfbox.host import preflight
from kfbox.host.errors import PreflightError, UsageError
from kfbox.host.preflight import Check
from kfbox.host.progress import Reporter


class ExistingEngine(KubernetesEngine):
    name = "existing"
    kind_cluster = False
    features = EngineFeatures(bundle="folder")

    @property
    def kubeconfig(self) -> Path | None:
        return self.spec.kubernetes.kubeconfig

    def kube(self) -> KubeApi:
        if self.spec.kubernetes.kubeconfig is None and self._kube is None:
            raise UsageError("--engine existing needs a cluster",
                             fix="pass --kubeconfig PATH (or set kubeconfig: in kfbox.yaml's "
                                 "kubernetes block)")
        return super().kube()

    def preflight(self) -> list[Check]:
        # kfbox publishes no host port for someone else's cluster: there is none to check.
        checks = [c for c in preflight.host_checks(self.spec) if not c.name.startswith("port ")]
        checks += [self.tool_check("kubectl"), *self.git_check()]
        self.kube()
        return checks

    def wants_gpu(self) -> bool:
        """The cluster's GPUs are its owner's: `on` insists that some node advertises one."""
        if self.spec.gpu == "off":
            return False
        gpus = self.gpus()
        if self.spec.gpu == "on" and not gpus:
            raise PreflightError("gpu: on, but no node of the cluster advertises nvidia.com/gpu",
                                 fix="use --gpu auto or --gpu off, or install the cluster's "
                                     "GPU operator or device plugin")
        return gpus > 0

    def up(self, reporter: Reporter) -> SandboxStatus:
        gpu = self.wants_gpu()
        installed_before = set(self.recorded().get("installed", []))
        plan = self.plan(gpu)
        installer = self.installer(reporter)
        rendered = {c.name: installer.render(c) for c in plan}
        # Present: any of its objects other than a (shared) Namespace exists under another
        # field manager, whether or not the component has readiness gates.
        found = [c for c in plan if c.name not in installed_before
                 and any(o.get("kind") != "Namespace" and installer.foreign(o) is not None
                         for o in rendered[c.name])]
        missing = [c for c in plan if c not in found]
        results: list[InstallResult] = installer.install(missing, rendered) if missing else []
        for comp in found:
            with reporter.step(f"Found {comp.name}: waiting for it (kfbox changes nothing)"):
                installer.wait_ready(comp)
        self.record(gpu, results, installed=[c.name for c in missing],
                    found=[c.name for c in found])
        return self.status()

    def status(self) -> SandboxStatus:
        return self.sandbox_status(self.component_status())

    def access(self) -> ClusterAccess:
        return self.cluster_access(self.spec.kubernetes.registry or "")

    def down(self, reporter: Reporter, *, keep_data: bool = False) -> list[str]:
        """Delete the namespaces kfbox created for runs; nothing else."""
        kube = self.kube()
        selector = f"{RUN_LABEL}={self.spec.name}"
        with reporter.step("Deleting kfbox run namespaces"):
            for ns in kube.list("v1", "Namespace", selector=selector):
                kube.delete("v1", "Namespace", ns["metadata"]["name"])
        return [f"namespace {ns['metadata']['name']}" for ns in
                kube.list("v1", "Namespace", selector=selector)
                if not ns["metadata"].get("deletionTimestamp")]
