"""The Kubernetes engine: a kind cluster (GPU passed through) or an existing cluster, with the
component catalog installed and the platform seam on Kubeflow's APIs."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from kfbox.sandbox import paths, preflight
from kfbox.sandbox.docker_engine import LABEL
from kfbox.sandbox.engines.base import Capabilities, Check, ComponentStatus, Engine, SandboxStatus
from kfbox.sandbox.engines.kubernetes import nvkind, readiness, registry
from kfbox.sandbox.engines.kubernetes.catalog import Catalog, Component, load_catalog
from kfbox.sandbox.engines.kubernetes.cluster import KindCluster
from kfbox.sandbox.engines.kubernetes.installer import Builtins, Installer, InstallResult
from kfbox.sandbox.engines.kubernetes.kubeapi import KubeApi, KubeError, client_from_kubeconfig
from kfbox.sandbox.engines.kubernetes.store import ManifestStore
from kfbox.sandbox.engines.kubernetes.tools import Tools
from kfbox.sandbox.errors import KfboxError, PreflightError, UsageError
from kfbox.sandbox.gpu import detect_gpus
from kfbox.sandbox.platform import Platform
from kfbox.sandbox.progress import Reporter

STATE_FILE = "kubernetes.json"
GPU_WAIT_S = 300
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"
"""The label kind puts on every node container, valued with the cluster's name."""
KIND_ONLY = {"registry"}
"""Components that only make sense on a kind cluster kfbox made."""


class KubernetesEngine(Engine):
    """`kind`: kfbox creates and owns the cluster. `existing`: someone else's cluster, given by
    a kubeconfig; kfbox installs only what the profile asks and never deletes the cluster."""

    name = "kubernetes"

    def __init__(self, spec: Any, *, tools: Tools | None = None,
                 catalog: Catalog | None = None, kube: KubeApi | None = None) -> None:
        super().__init__(spec)
        self.tools = tools or Tools()
        self.catalog = catalog or load_catalog()
        self._kube = kube
        self.state = paths.state_dir(spec.name)
        self.cluster = KindCluster(spec, self.tools, self.state)

    # ---- connection ------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path | None:
        return self.cluster.kubeconfig if self.spec.engine == "kind" else self.spec.kubeconfig

    def kube(self) -> KubeApi:
        """A client for the cluster; UsageError (exit 2) when the kubeconfig points nowhere."""
        if self._kube is None:
            if self.spec.engine == "existing" and self.spec.kubeconfig is None:
                raise UsageError("--engine existing needs a cluster",
                                 fix="pass --kubeconfig PATH (or set kubeconfig: in kfbox.yaml)")
            self._kube = KubeApi(client_from_kubeconfig(self.kubeconfig))
        try:
            self._kube.server_version()
        except KubeError as exc:
            raise UsageError(f"kubeconfig {str(self.kubeconfig)!r}: {exc}",
                             fix="check the cluster is running and the kubeconfig's server "
                                 "address (`kubectl cluster-info`)") from None
        return self._kube

    # ---- preflight -------------------------------------------------------------------------

    def preflight(self) -> list[Check]:
        if self.spec.engine == "kind":
            checks = preflight.host_checks(self.spec, self._owned_ports())
        else:
            # kfbox publishes no host port for someone else's cluster: there is none to check.
            checks = [c for c in preflight.host_checks(self.spec)
                      if not c.name.startswith("port ")]
        checks += [self._tool_check(t) for t in self._tools_needed()]
        if self.spec.engine == "kind":
            checks = [self._inotify_required(c) for c in checks]
            if self.spec.gpu != "off" and detect_gpus().present:
                checks += self._gpu_host_checks()
        else:
            self.kube()
        return checks

    def _owned_ports(self) -> set[int]:
        """Host ports this sandbox's own containers publish: the registry (labelled
        kfbox.sandbox=<name>) and the kind nodes (labelled by kind with the cluster name), so a
        repairing `up` does not find its own ports "in use"."""
        selectors = [f"{LABEL}={self.spec.name}", f"{KIND_CLUSTER_LABEL}={self.cluster.name}"]
        try:
            ids = [i for s in selectors for i in self.tools(
                "docker", "ps", "-aq", "--filter", f"label={s}", timeout=30).stdout.split()]
            if not ids:
                return set()
            bound = self.tools("docker", "inspect", "-f", "{{json .HostConfig.PortBindings}}",
                               *ids, timeout=30).stdout
        except (KfboxError, subprocess.TimeoutExpired):
            return set()  # Docker missing or unreachable: its own check says so
        ports: set[int] = set()
        for line in bound.splitlines():
            for bindings in (json.loads(line) or {}).values():
                ports.update(int(b["HostPort"]) for b in bindings or [] if b.get("HostPort"))
        return ports

    def _tools_needed(self) -> list[str]:
        return ["kind", "kubectl"] if self.spec.engine == "kind" else ["kubectl"]

    def _tool_check(self, tool: str) -> Check:
        try:
            return Check(tool, "pass", self.tools.path(tool))
        except PreflightError as exc:
            return Check(tool, "fail", str(exc), fix=exc.fix or "")

    @staticmethod
    def _inotify_required(check: Check) -> Check:
        """kind nodes run systemd and kubelet: low inotify limits make pods fail to start."""
        if check.name == "inotify" and check.status == "warn":
            return Check(check.name, "fail", check.detail,
                         fix="sudo sysctl fs.inotify.max_user_watches=524288 "
                             "fs.inotify.max_user_instances=512 (or `kfbox provision`)")
        return check

    def _gpu_host_checks(self) -> list[Check]:
        from kfbox.sandbox import docker_engine

        info = docker_engine.connect().info()
        checks = nvkind.host_checks(info, nvkind.read_toolkit_config())
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
        if self.spec.engine == "existing":
            return True
        return all(c.status == "pass" for c in self._gpu_host_checks())

    # ---- up --------------------------------------------------------------------------------

    def components(self, gpu: bool) -> list[Component]:
        names = self.catalog.profile(self.spec.profile, gpu=gpu)
        if self.spec.engine == "existing":
            names = [n for n in names if n not in KIND_ONLY]
        return self.catalog.plan(names)

    def builtins(self) -> Builtins:
        return {
            "local-registry-hosting": lambda: [registry.hosting_configmap(self.spec)],
            "nvidia-runtime-class": lambda: [nvkind.runtime_class()],
        }

    def store(self) -> ManifestStore:
        return ManifestStore(
            cache=paths.cache_dir("manifests"), tools=self.tools,
            trust_on_first_use=self.spec.trust_on_first_use,
            offline=self.spec.from_bundle / "manifests" if self.spec.from_bundle else None,
        )

    def up(self, reporter: Reporter) -> SandboxStatus:
        gpu = self.wants_gpu()
        plan = self.components(gpu)
        if self.spec.from_bundle is not None:
            from kfbox.sandbox.engines.kubernetes.bundle import load_bundle

            self.catalog = load_bundle(self.spec.from_bundle, self.tools, reporter)
            plan = self.components(gpu)
        if self.spec.engine == "kind":
            self._up_kind(reporter, gpu)
        results = Installer(self.kube(), self.store(), self.builtins(), reporter).install(plan)
        if gpu:
            with reporter.step("Waiting for nodes to advertise nvidia.com/gpu"):
                self.wait_for_gpus()
        self._record(plan, results, gpu)
        return self.status()

    def _up_kind(self, reporter: Reporter, gpu: bool) -> None:
        with reporter.step("Starting the local registry"):
            registry.ensure_running(self.tools, self.spec)
        with reporter.step(f"Creating kind cluster {self.cluster.name!r}"):
            self.cluster.create(gpu=gpu)
            self.cluster.write_kubeconfig()
        with reporter.step("Joining the registry to the kind network"):
            registry.connect_to_kind(self.tools, self.spec)
            for node in self.cluster.nodes():
                registry.configure_node(self.tools, self.spec, node)
        if self.spec.from_bundle is not None:
            from kfbox.sandbox.engines.kubernetes.bundle import bundle_images

            with reporter.step("Loading the bundle's images into the nodes") as update:
                for image in bundle_images(self.spec.from_bundle):
                    update(image)
                    self.tools("kind", "load", "docker-image", image, "--name",
                               self.cluster.name, check=False, timeout=1800)
        if gpu:
            with reporter.step("Configuring the NVIDIA toolkit in the nodes") as update:
                for node in self.cluster.workload_nodes():
                    update(node)
                    nvkind.configure_node(self.tools, node)

    def wait_for_gpus(self, timeout_s: float = GPU_WAIT_S, poll_s: float = 5) -> int:
        """Until some node advertises nvidia.com/gpu; returns the count."""
        kube = self.kube()
        retrying = Retrying(retry=retry_if_result(lambda n: n == 0),
                            stop=stop_after_delay(timeout_s), wait=wait_fixed(poll_s))
        try:
            return retrying(lambda: sum(nvkind.advertised_gpus(n)
                                        for n in kube.list("v1", "Node")))
        except RetryError:
            raise KfboxError(f"no node advertises {nvkind.GPU_RESOURCE} after {timeout_s:.0f}s",
                             fix="see `kubectl -n kube-system logs ds/nvidia-device-plugin-"
                                 "daemonset`") from None

    def _record(self, plan: list[Component], results: list[InstallResult], gpu: bool) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / STATE_FILE).write_text(json.dumps({
            "engine": self.spec.engine, "gpu": gpu,
            "components": [c.name for c in plan],
            "install": [asdict(r) for r in results],
        }, indent=2))

    def recorded(self) -> dict[str, Any]:
        path = self.state / STATE_FILE
        return json.loads(path.read_text()) if path.is_file() else {}

    # ---- status / down ---------------------------------------------------------------------

    def status(self) -> SandboxStatus:
        absent = SandboxStatus(self.spec.name, self.spec.engine, "absent")
        if self.spec.engine == "kind" and (not self.cluster.kubeconfig.is_file()
                                           or not self.cluster.exists()):
            return absent
        record = self.recorded()
        kube = self.kube()
        components = []
        for name in record.get("components", []):
            comp = self.catalog.components[name]
            waiting = readiness.pending(kube, comp.ready, [])
            components.append(ComponentStatus(
                name, not waiting, "ready" if not waiting else "waiting for " + waiting[0],
                image=comp.version))
        # No sandbox-wide notebook server on Kubernetes: each run gets its own Notebook CR
        # (through the notebook controller, a catalog component) and reaches it by
        # port-forward, so status lists the installed components only.
        healthy = all(c.healthy for c in components)
        major, minor = kube.server_version()
        return SandboxStatus(self.spec.name, self.spec.engine,
                             "running" if healthy else "degraded", components,
                             facts={"kubernetes": f"{major}.{minor}", "gpu": record.get("gpu"),
                                    "install": record.get("install", [])})

    def capabilities(self) -> Capabilities:
        record = self.recorded()
        software = {name: self.catalog.components[name].version
                    for name in record.get("components", [])}
        return Capabilities(
            registry=registry.host_address(self.spec) if self.spec.engine == "kind" else "",
            model_store="a PersistentVolumeClaim per run namespace",
            software=software,
        )

    def down(self, reporter: Reporter, *, keep_data: bool = False) -> list[str]:
        """kind: delete the cluster (and the registry unless keep_data). existing: delete only
        the namespaces kfbox created for runs; the cluster and its components stay."""
        left: list[str] = []
        if self.spec.engine == "kind":
            with reporter.step(f"Deleting kind cluster {self.cluster.name!r}"):
                self.cluster.delete()
            if not keep_data:
                with reporter.step("Removing the local registry"):
                    registry.remove(self.tools, self.spec)
            if self.cluster.exists():
                left.append(f"kind cluster {self.cluster.name}")
            return left
        from kfbox.sandbox.engines.kubernetes.workspace import RUN_LABEL

        kube = self.kube()
        with reporter.step("Deleting kfbox run namespaces"):
            for ns in kube.list("v1", "Namespace", selector=f"{RUN_LABEL}={self.spec.name}"):
                kube.delete("v1", "Namespace", ns["metadata"]["name"])
        return [f"namespace {ns['metadata']['name']}" for ns in
                kube.list("v1", "Namespace", selector=f"{RUN_LABEL}={self.spec.name}")
                if not ns["metadata"].get("deletionTimestamp")]

    def platform(self, run_dir: Path) -> Platform:
        from kfbox.sandbox.engines.kubernetes.platform import KubePlatform

        return KubePlatform.open(self, run_dir)
