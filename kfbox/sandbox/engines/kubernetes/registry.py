"""The sandbox's local image registry, joined to the kind network (kind's pattern)."""

from __future__ import annotations

from typing import Any

from kfbox.sandbox.config import SandboxSpec
from kfbox.sandbox.docker_engine import COMPONENT_LABEL, LABEL
from kfbox.sandbox.engines.kubernetes.kindconfig import CONTAINERD_CERTS_DIR
from kfbox.sandbox.engines.kubernetes.tools import Tools

REGISTRY_IMAGE = "registry:2"
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


def ensure_running(tools: Tools, spec: SandboxSpec) -> None:
    """Start the registry container (127.0.0.1 only) unless it already runs."""
    name = container_name(spec)
    state = tools("docker", "inspect", "-f", "{{.State.Running}}", name, check=False)
    if state.returncode == 0 and state.stdout.strip() == "true":
        return
    if state.returncode == 0:
        tools("docker", "start", name)
        return
    tools(
        "docker", "run", "-d", "--restart=always", "--name", name,
        "-p", f"127.0.0.1:{spec.ports.registry}:{REGISTRY_CONTAINER_PORT}",
        "--label", f"{LABEL}={spec.name}", "--label", f"{COMPONENT_LABEL}=registry",
        REGISTRY_IMAGE,
    )


def connect_to_kind(tools: Tools, spec: SandboxSpec) -> None:
    """Join the registry to the kind network so nodes reach it by container name."""
    name = container_name(spec)
    networks = tools("docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", name)
    if f'"{KIND_NETWORK}"' not in networks.stdout:
        tools("docker", "network", "connect", KIND_NETWORK, name)


def configure_node(tools: Tools, spec: SandboxSpec, node: str) -> None:
    """Write hosts.toml for `localhost:PORT` inside one kind node."""
    directory = f"{CONTAINERD_CERTS_DIR}/{host_address(spec)}"
    tools("docker", "exec", node, "mkdir", "-p", directory)
    tools("docker", "exec", "-i", node, "cp", "/dev/stdin", f"{directory}/hosts.toml",
          stdin=hosts_toml(spec))


def remove(tools: Tools, spec: SandboxSpec) -> None:
    tools("docker", "rm", "-f", container_name(spec), check=False)
