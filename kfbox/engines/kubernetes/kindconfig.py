"""The kind cluster config for a sandbox: nodes, 127.0.0.1 port mappings, registry, GPU mounts."""

from __future__ import annotations

from typing import Any

import yaml

from kfbox.host.config import SandboxSpec

CONTAINERD_CERTS_DIR = "/etc/containerd/certs.d"
# containerd reads per-registry hosts.toml files from config_path; kind's local-registry
# pattern points it there so `localhost:PORT/...` resolves to the registry container. The
# plugin path is the version-2 config's: kind v0.32.0's node image still writes `version = 2`
# (images/base/files/etc/containerd/config.toml) though it runs containerd v2.3.1
# (images/base/Dockerfile), which reads version-2 files; site/static/examples/
# kind-with-registry.sh at v0.32.0 patches this very path.
REGISTRY_CONFIG_PATCH = (
    '[plugins."io.containerd.grpc.v1.cri".registry]\n'
    f'  config_path = "{CONTAINERD_CERTS_DIR}"'
)
NVIDIA_DEVICES_MOUNT = {
    # nvkind: with accept-nvidia-visible-devices-as-volume-mounts on the host, a volume mount
    # at this path asks the host toolkit to inject every GPU into the node container.
    "hostPath": "/dev/null",
    "containerPath": "/var/run/nvidia-container-devices/all",
}
NODE_IMAGE = ("kindest/node:v1.36.1@sha256:"
              "3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5")
"""kind v0.32.0's default node image (pkg/apis/config/defaults/image.go), named so a bundle
can carry it and every node runs the same Kubernetes."""
NODE_IMAGE_TAG = NODE_IMAGE.partition("@")[0]
"""The node image by tag: what exists after `docker load` of a bundle's tarball. Docker's
classic image store does not restore a loaded image's repo digest, so the pinned reference
would not be found and kind would pull it (kubernetes-sigs/kind v0.32.0
pkg/cluster/internal/providers/docker/images.go, pullIfNotPresent: `docker inspect
--type=image` the reference, else `docker pull`); offline, kfbox names the tag after checking
its image id against the bundle's record."""
JUPYTER_NODE_PORT = 30888
"""NodePort of the sandbox notebook's Service (jupyter.py), mapped to ports.jupyter on
127.0.0.1."""


def cluster_name(spec: SandboxSpec) -> str:
    return spec.name


def kind_config(spec: SandboxSpec, *, gpu: bool,
                node_image: str = NODE_IMAGE) -> dict[str, Any]:
    """The `kind.x-k8s.io/v1alpha4` Cluster for this spec. GPUs go to the nodes that run
    workloads: the control plane alone, or every worker when there are workers."""
    control: dict[str, Any] = {
        "role": "control-plane",
        "image": node_image,
        "extraPortMappings": [{
            "containerPort": JUPYTER_NODE_PORT,
            "hostPort": spec.ports.jupyter,
            "listenAddress": "127.0.0.1",
            "protocol": "TCP",
        }],
    }
    workers: list[dict[str, Any]] = [{"role": "worker", "image": node_image}
                                     for _ in range(spec.kubernetes.nodes - 1)]
    if gpu:
        for node in workers or [control]:
            node["extraMounts"] = [dict(NVIDIA_DEVICES_MOUNT)]
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": cluster_name(spec),
        "networking": {"apiServerAddress": "127.0.0.1"},
        "containerdConfigPatches": [REGISTRY_CONFIG_PATCH],
        "nodes": [control, *workers],
    }


def render(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
