"""The sandbox's local image registry, joined to the kind network (kind's pattern, as
kubernetes-sigs/kind v0.32.0 site/static/examples/kind-with-registry.sh sets it up: `registry:3`,
127.0.0.1 only, config_path hosts.toml per node, the local-registry-hosting ConfigMap)."""

from __future__ import annotations

from typing import Any

from kfbox.engines.kubernetes.hostdocker import HostDocker
from kfbox.engines.kubernetes.kindconfig import CONTAINERD_CERTS_DIR
from kfbox.host.config import SandboxSpec
from kfbox.host.docker_engine import COMPONENT_LABEL, LABEL

REGISTRY_IMAGE = "registry:3"
KIND_NETWORK = "kind"
REGISTRY_CONTAINER_PORT = 5000


def container_name(spec: SandboxSpec) -> str:
    return f"{spec.name}-registry"


def host_address(spec: SandboxSpec) -> str:
    """What the host pushes to and what pods pull from: the same name on both sides."""
    return f"localhost:{spec.ports.registry}"


def hosts_toml(spec: SandboxSpec) -> str:
    """containerd's per-registry config: `localhost:PORT` is served by the registry container
    over the kind network (plain HTTP, reachable only inside it and on 127.0.0.1)."""
    return f'[host."http://{container_name(spec)}:{REGISTRY_CONTAINER_PORT}"]\n'


def hosting_configmap(spec: SandboxSpec) -> dict[str, Any]:
    """KEP-1755's `local-registry-hosting` ConfigMap, so tools discover the registry."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {"localRegistryHosting.v1": f'host: "{host_address(spec)}"\n'},
    }


def ensure_running(docker: HostDocker, spec: SandboxSpec) -> None:
    """Start the registry container (127.0.0.1 only) unless it already runs."""
    name = container_name(spec)
    running = docker.running(name)
    if running:
        return
    if running is False:
        docker.start(name)
        return
    docker.run_detached(
        name, REGISTRY_IMAGE,
        publish=f"127.0.0.1:{spec.ports.registry}:{REGISTRY_CONTAINER_PORT}",
        labels={LABEL: spec.name, COMPONENT_LABEL: "registry"},
    )


def connect_to_kind(docker: HostDocker, spec: SandboxSpec) -> None:
    """Join the registry to the kind network so nodes reach it by container name."""
    name = container_name(spec)
    if KIND_NETWORK not in docker.networks(name):
        docker.connect(KIND_NETWORK, name)


def configure_node(docker: HostDocker, spec: SandboxSpec, node: str) -> None:
    """Write hosts.toml for `localhost:PORT` inside one kind node."""
    directory = f"{CONTAINERD_CERTS_DIR}/{host_address(spec)}"
    docker.node_exec(node, "mkdir", "-p", directory)
    docker.node_exec(node, "cp", "/dev/stdin", f"{directory}/hosts.toml", stdin=hosts_toml(spec))


def remove(docker: HostDocker, spec: SandboxSpec) -> None:
    docker.remove(container_name(spec))
