"""`--engine kind`: kfbox creates the cluster (GPU passed through after nvkind), its local
registry and a notebook server a person opens at 127.0.0.1, installs the profile, and deletes
all of it on `down`."""

from __future__ import annotations

from pathlib import Path

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from kfbox.engines import tutorials
from kfbox.engines.base import (
    Access,
    Capabilities,
    ComponentStatus,
    EngineFeatures,
    SandboxStatus,
)
from kfbox.engines.kubernetes import jupyter, kindconfig, nvkind, registry
from kfbox.engines.kubernetes.bundle import bundle_images, load_images, offline_node_image
from kfbox.engines.kubernetes.catalog import Catalog
from kfbox.engines.kubernetes.cluster import KindCluster
from kfbox.engines.kubernetes.engine import TUTORIALS, KubernetesEngine
from kfbox.engines.kubernetes.images import KubeImages
from kfbox.engines.kubernetes.installer import Builtins
from kfbox.engines.kubernetes.kubeapi import KubeApi
from kfbox.engines.kubernetes.platform import ClusterAccess
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.tutorials import RUNTIME_IMAGE_ENV
from kfbox.host import preflight
from kfbox.host.config import SandboxSpec
from kfbox.host.docker_engine import LABEL
from kfbox.host.errors import KfboxError, PreflightError
from kfbox.host.gpu import detect_gpus
from kfbox.host.preflight import Check
from kfbox.host.progress import Reporter

GPU_WAIT_S = 300
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"
"""The label kind puts on every node container, valued with the cluster's name."""


class KindEngine(KubernetesEngine):
    name = "kind"
    kind_cluster = True
    features = EngineFeatures(bundle="folder")

    def __init__(self, spec: SandboxSpec, *, tools: Tools | None = None,
                 catalog: Catalog | None = None, kube: KubeApi | None = None) -> None:
        super().__init__(spec, tools=tools, catalog=catalog, kube=kube)
        self.cluster = KindCluster(spec, self.tools, self.state)

    @property
    def kubeconfig(self) -> Path:
        return self.cluster.kubeconfig

    # ---- preflight -------------------------------------------------------------------------

    def preflight(self) -> list[Check]:
        checks = preflight.host_checks(self.spec, self.owned_ports())
        checks += [self.tool_check(t) for t in ("kind", "kubectl")] + self.git_check()
        checks = [self._inotify_required(c) for c in checks]
        if self.spec.gpu != "off" and detect_gpus().present:
            checks += self._gpu_host_checks()
        return checks

    def owned_ports(self) -> set[int]:
        """Host ports this sandbox's own containers publish: the registry (labelled
        kfbox.sandbox=<name>) and the kind nodes (labelled by kind with the cluster name), so a
        repairing `up` does not find its own ports "in use"."""
        return self.docker.published_ports([f"{LABEL}={self.spec.name}",
                                            f"{KIND_CLUSTER_LABEL}={self.cluster.name}"])

    @staticmethod
    def _inotify_required(check: Check) -> Check:
        """kind nodes run systemd and kubelet: low inotify limits make pods fail to start."""
        if check.name == "inotify" and check.status == "warn":
            return Check(check.name, "fail", check.detail,
                         fix="sudo sysctl fs.inotify.max_user_watches=524288 "
                             "fs.inotify.max_user_instances=512 (or `kfbox provision`)")
        return check

    def _gpu_host_checks(self) -> list[Check]:
        checks = nvkind.host_checks(self.docker.info(), nvkind.read_toolkit_config())
        if self.spec.gpu == "auto":  # auto falls back to CPU; it never blocks bring-up
            checks = [Check(c.name, "warn", c.detail + "; continuing without GPU", c.fix)
                      if c.status == "fail" else c for c in checks]
        return checks

    def wants_gpu(self) -> bool:
        """GPU passthrough for this bring-up: `on` insists (and fails early without one),
        `auto` uses a GPU when the host and its toolkit are ready."""
        if self.spec.gpu == "off":
            return False
        if not detect_gpus().present:
            if self.spec.gpu == "on":
                raise PreflightError("gpu: on, but this host has no NVIDIA GPU (nvidia-smi "
                                     "lists none)", fix="use --gpu auto or --gpu off")
            return False
        return all(c.status == "pass" for c in self._gpu_host_checks())

    # ---- up --------------------------------------------------------------------------------

    def token(self) -> str:
        return self.state.token()

    def builtins(self) -> Builtins:
        spec = self.spec
        return {
            **super().builtins(),
            "local-registry-hosting": lambda: [registry.hosting_configmap(spec)],
            "sandbox-notebook": lambda: jupyter.sandbox_objects(
                spec.name, self.sandbox_notebook_image(), self.token(),
                {RUNTIME_IMAGE_ENV: self.images().publish_own("runtime", spec.ca_bundle)}),
        }

    def images(self) -> KubeImages:
        return KubeImages(self.docker, registry.host_address(self.spec))

    def sandbox_notebook_image(self) -> str:
        """The image `kubernetes.notebook_image` names, else kfbox's own notebook image (the ML
        runtime's software, which the tutorials use) pushed to the kind registry."""
        named = self.spec.kubernetes.notebook_image
        return named or self.images().publish_own("jupyter", self.spec.ca_bundle)

    def offer_tutorials(self, reporter: Reporter) -> None:
        """The tutorials into the sandbox notebook's workspace, where a person opens them."""
        tutorials.offer(self.notebook_url(), self.token(), TUTORIALS, jupyter.SANDBOX_TUTORIALS,
                        reporter, fix=f"see `kubectl -n {jupyter.SANDBOX_NAMESPACE} logs "
                                      f"{jupyter.SANDBOX_NOTEBOOK}-0`, then `kfbox up` again")

    def up(self, reporter: Reporter) -> SandboxStatus:
        gpu = self.wants_gpu()
        node_image = kindconfig.NODE_IMAGE
        if self.spec.from_bundle is not None:
            load_images(self.spec.from_bundle, self.docker, reporter)
            node_image = offline_node_image(self.spec.from_bundle, self.docker)
        plan = self.plan(gpu)
        with reporter.step("Starting the local registry"):
            registry.ensure_running(self.docker, self.spec)
        with reporter.step(f"Creating kind cluster {self.cluster.name!r}"):
            self.cluster.create(gpu=gpu, node_image=node_image)
            self.cluster.write_kubeconfig()
        with reporter.step("Joining the registry to the kind network"):
            registry.connect_to_kind(self.docker, self.spec)
            for node in self.cluster.nodes():
                registry.configure_node(self.docker, self.spec, node)
        if self.spec.from_bundle is not None:
            with reporter.step("Loading the bundle's images into the nodes") as update:
                for image in bundle_images(self.spec.from_bundle, nodes=True):
                    update(image)
                    self.cluster.load_image(image)
        if gpu:
            with reporter.step("Configuring the NVIDIA toolkit in the nodes") as update:
                for node in self.cluster.workload_nodes():
                    update(node)
                    nvkind.configure_node(self.docker, node)
        results = self.installer(reporter).install(plan)
        if any(c.name == "jupyter" for c in plan):
            self.offer_tutorials(reporter)
        if gpu:
            with reporter.step("Waiting for nodes to advertise nvidia.com/gpu"):
                self.wait_for_gpus()
        self.record(gpu, results)
        return self.status()

    def wait_for_gpus(self, timeout_s: float = GPU_WAIT_S, poll_s: float = 5) -> int:
        """Until some node advertises nvidia.com/gpu; returns the count."""
        retrying = Retrying(retry=retry_if_result(lambda n: n == 0),
                            stop=stop_after_delay(timeout_s), wait=wait_fixed(poll_s))
        try:
            return retrying(self.gpus)
        except RetryError:
            raise KfboxError(f"no node advertises {nvkind.GPU_RESOURCE} after {timeout_s:.0f}s",
                             fix="see `kubectl -n kube-system logs ds/nvidia-device-plugin-"
                                 "daemonset`") from None

    # ---- status, capabilities, down --------------------------------------------------------

    def notebook_url(self) -> str:
        return (f"http://127.0.0.1:{self.spec.ports.jupyter}"
                f"{jupyter.prefix(jupyter.SANDBOX_NAMESPACE, jupyter.SANDBOX_NOTEBOOK)}")

    def status(self) -> SandboxStatus:
        if not self.cluster.kubeconfig.is_file() or not self.cluster.exists():
            return SandboxStatus(self.spec.name, self.spec.engine, "absent")
        components = [ComponentStatus(c.name, c.healthy, c.detail, self.notebook_url(), c.image)
                      if c.name == "jupyter" else c for c in self.component_status()]
        return self.sandbox_status(components)

    def login_url(self, component: str) -> str | None:
        if component != "jupyter":
            return None
        return f"{self.notebook_url()}/lab?token={self.token()}"

    def capabilities(self) -> Capabilities:
        found = super().capabilities()
        if "jupyter" in self.recorded().get("components", []):
            found.notebook = Access(self.notebook_url(), "token")
        return found

    def access(self) -> ClusterAccess:
        gpu = bool(self.recorded().get("gpu"))
        return self.cluster_access(
            registry.host_address(self.spec), gpu_runtime_class=nvkind.RUNTIME_CLASS,
            gpu_training_runtime=nvkind.GPU_TRAINING_RUNTIME if gpu else None)

    def down(self, reporter: Reporter, *, keep_data: bool = False) -> list[str]:
        """Delete the cluster (and the registry unless keep_data)."""
        with reporter.step(f"Deleting kind cluster {self.cluster.name!r}"):
            self.cluster.delete()
        if not keep_data:
            with reporter.step("Removing the local registry"):
                registry.remove(self.docker, self.spec)
        return [f"kind cluster {self.cluster.name}"] if self.cluster.exists() else []
