"""GPU passthrough into kind nodes after NVIDIA's nvkind recipe: host checks, node setup, the
`nvidia` RuntimeClass and the training runtime whose pods run under it.

The recipe followed is NVIDIA/nvkind at commit 24c190e (main, 2026-06-09; nvkind has no release
tags): pkg/nvkind/node.go and cmd/nvkind/cluster_create.go. Per GPU node it installs the
container toolkit, configures containerd from its config file without making `nvidia` the
default runtime (with --config-source=command the toolkit writes an invalid drop-in under
containerd 2 with a version-2 config, which kind's node images run: v0.32.0's containerd v2.3.1
still with `version = 2`), restarts containerd,
then masks the driver's ModifyDeviceFiles; then it registers RuntimeClass `nvidia`. runc stays
the nodes' default runtime, so every pod that needs a GPU names RuntimeClass `nvidia`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from kfbox.engines.kubernetes.hostdocker import HostDocker
from kfbox.host.preflight import Check

TOOLKIT_CONFIG = Path("/etc/nvidia-container-runtime/config.toml")
VOLUME_MOUNTS_KEY = "accept-nvidia-visible-devices-as-volume-mounts"
GPU_RESOURCE = "nvidia.com/gpu"
RUNTIME_CLASS = "nvidia"
TOOLKIT_KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
TOOLKIT_REPO = "https://nvidia.github.io/libnvidia-container"
NVKIND_COMMIT = "24c190e165d43a2f20589cb779a4db5b2af0313f"
PARAMS = "/proc/driver/nvidia/params"
MASKED = "ModifyDeviceFiles: 0"
GPU_TRAINING_RUNTIME = "kfbox-torch-nvidia"
"""kfbox's ClusterTrainingRuntime for GPU jobs on kind: torch-distributed's shape, under the
`nvidia` RuntimeClass (a TrainJob's runtimePatches cannot name a runtime class at v2.3.0)."""


def host_checks(docker_info: dict[str, Any], toolkit_config: str | None) -> list[Check]:
    """The two host settings nvkind needs (its README's Setup); each failing one names the
    command that fixes it."""
    checks = []
    default = docker_info.get("DefaultRuntime", "")
    if default == "nvidia":
        checks.append(Check("gpu: docker default runtime", "pass", "nvidia"))
    else:
        checks.append(Check(
            "gpu: docker default runtime", "fail",
            f"the Docker engine's default runtime is {default or 'unset'!r}, not 'nvidia'",
            fix="sudo nvidia-ctk runtime configure --runtime=docker --set-as-default "
                "--cdi.enabled && sudo systemctl restart docker",
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
    """Shell steps run inside each GPU node, in nvkind's order: install the toolkit (node.go
    InstallContainerToolkit), configure containerd (ConfigureContainerRuntime), then mask
    ModifyDeviceFiles (PatchProcDriverNvidia). Toolkits from v1.19 mask it themselves through
    a CDI hook; the legacy unmount-and-bind runs only when the params file is not masked."""
    source_list = f"{TOOLKIT_REPO}/stable/deb/nvidia-container-toolkit.list"
    return [
        "apt-get update && apt-get install -y gpg",
        f"curl -fsSL {TOOLKIT_REPO}/gpgkey | gpg --batch --yes --dearmor -o {TOOLKIT_KEYRING}",
        f"curl -fsSL {source_list} | sed 's#deb https://#deb [signed-by={TOOLKIT_KEYRING}] "
        "https://#g' > /etc/apt/sources.list.d/nvidia-container-toolkit.list",
        "apt-get update && apt-get install -y nvidia-container-toolkit",
        "nvidia-ctk runtime configure --runtime=containerd --config-source=file",
        "systemctl restart containerd",
        f"grep -qx '{MASKED}' {PARAMS} || {{ umount -R /proc/driver/nvidia && "
        f"cp {PARAMS} /root/gpu-params && "
        "sed -i 's/^ModifyDeviceFiles: 1$/ModifyDeviceFiles: 0/' /root/gpu-params && "
        f"mount --bind /root/gpu-params {PARAMS}; }}",
    ]


def configure_node(docker: HostDocker, node: str) -> None:
    for script in node_setup_scripts():
        docker.node_script(node, script)


def runtime_class() -> dict[str, Any]:
    """RuntimeClass `nvidia`: pods that name it run with the NVIDIA containerd handler."""
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": RUNTIME_CLASS},
        "handler": RUNTIME_CLASS,
    }


def training_runtime() -> dict[str, Any]:
    """The GPU ClusterTrainingRuntime: torch-distributed's policy and node job (kubeflow/trainer
    v2.3.0 manifests/base/runtimes/torch_distributed.yaml) with pods under `nvidia`; every job
    names its own image, so the one here is a placeholder that never runs."""
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": GPU_TRAINING_RUNTIME,
                     "labels": {"trainer.kubeflow.org/framework": "torch"}},
        "spec": {
            "mlPolicy": {"numNodes": 1, "torch": {}},
            "template": {"spec": {"replicatedJobs": [{
                "name": "node",
                "template": {
                    "metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step":
                                            "trainer"}},
                    "spec": {"template": {"spec": {
                        "runtimeClassName": RUNTIME_CLASS,
                        "containers": [{"name": "node", "image": "kfbox.invalid/set-by-job"}],
                    }}},
                },
            }]}},
        },
    }


def advertised_gpus(node: dict[str, Any]) -> int:
    """GPUs a Node object advertises as allocatable (the device plugin's work)."""
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    return int(allocatable.get(GPU_RESOURCE, "0") or 0)
