"""GPU passthrough into kind nodes after NVIDIA's nvkind recipe: host checks, node setup."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from kfbox.sandbox.engines.base import Check
from kfbox.sandbox.engines.kubernetes.tools import Tools

TOOLKIT_CONFIG = Path("/etc/nvidia-container-runtime/config.toml")
VOLUME_MOUNTS_KEY = "accept-nvidia-visible-devices-as-volume-mounts"
GPU_RESOURCE = "nvidia.com/gpu"
RUNTIME_CLASS = "nvidia"
TOOLKIT_KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
TOOLKIT_REPO = "https://nvidia.github.io/libnvidia-container"


def host_checks(docker_info: dict[str, Any], toolkit_config: str | None) -> list[Check]:
    """The two host settings nvkind needs; each failing one names the command that fixes it."""
    checks = []
    default = docker_info.get("DefaultRuntime", "")
    if default == "nvidia":
        checks.append(Check("gpu: docker default runtime", "pass", "nvidia"))
    else:
        checks.append(Check(
            "gpu: docker default runtime", "fail",
            f"the Docker engine's default runtime is {default or 'unset'!r}, not 'nvidia'",
            fix="sudo nvidia-ctk runtime configure --runtime=docker --set-as-default "
                "&& sudo systemctl restart docker",
        ))
    accepted = False
    if toolkit_config is not None:
        try:
            accepted = tomllib.loads(toolkit_config).get(VOLUME_MOUNTS_KEY) is True
        except tomllib.TOMLDecodeError:
            accepted = False
    if accepted:
        checks.append(Check(f"gpu: {VOLUME_MOUNTS_KEY}", "pass", str(TOOLKIT_CONFIG)))
    else:
        checks.append(Check(
            f"gpu: {VOLUME_MOUNTS_KEY}", "fail",
            f"not set to true in {TOOLKIT_CONFIG}" if toolkit_config is not None
            else f"{TOOLKIT_CONFIG} is missing (NVIDIA container toolkit not installed?)",
            fix=f"sudo nvidia-ctk config --set {VOLUME_MOUNTS_KEY}=true --in-place",
        ))
    return checks


def read_toolkit_config(path: Path = TOOLKIT_CONFIG) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def node_setup_scripts() -> list[str]:
    """Shell steps run inside each GPU node, in order: the toolkit for containerd, as nvkind
    does it. The host toolkit mounts /proc/driver/nvidia read-only into the node; it must be
    unmounted so the node's own toolkit can set up containers."""
    source_list = f"{TOOLKIT_REPO}/stable/deb/nvidia-container-toolkit.list"
    return [
        "umount -R /proc/driver/nvidia || true",
        "apt-get update && apt-get install -y --no-install-recommends gpg curl ca-certificates",
        f"curl -fsSL {TOOLKIT_REPO}/gpgkey | gpg --batch --yes --dearmor -o {TOOLKIT_KEYRING}",
        f"curl -fsSL {source_list} | sed 's#deb https://#deb [signed-by={TOOLKIT_KEYRING}] "
        "https://#g' > /etc/apt/sources.list.d/nvidia-container-toolkit.list",
        "apt-get update && apt-get install -y --no-install-recommends nvidia-container-toolkit",
        "nvidia-ctk runtime configure --runtime=containerd --config-source=command "
        "--set-as-default",
        "systemctl restart containerd",
    ]


def configure_node(tools: Tools, node: str) -> None:
    for script in node_setup_scripts():
        tools("docker", "exec", node, "bash", "-ec", script)


def runtime_class() -> dict[str, Any]:
    """RuntimeClass `nvidia`: pods that name it run with the NVIDIA containerd handler."""
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": RUNTIME_CLASS},
        "handler": RUNTIME_CLASS,
    }


def advertised_gpus(node: dict[str, Any]) -> int:
    """GPUs a Node object advertises as allocatable (the device plugin's work)."""
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    return int(allocatable.get(GPU_RESOURCE, "0") or 0)
