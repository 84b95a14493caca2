"""The lite sandbox's components: what each container looks like and how its readiness is probed."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from docker.types import DeviceRequest

from kfbox.engines.platform import MODEL_STORE_MOUNT
from kfbox.engines.tracking import (
    TRACKING_DATA,
    TRACKING_PORT,
    TRACKING_USER,
    server_command,
    server_environment,
)
from kfbox.host import listen
from kfbox.host.config import Resources, SandboxSpec

JUPYTER_WORKDIR = "/home/jovyan/work"


def prefix(sandbox: str) -> str:
    return f"kfbox-{sandbox}"


def network_name(sandbox: str) -> str:
    return prefix(sandbox)


def volume_name(sandbox: str, purpose: str) -> str:
    """Data volumes: `workspace` (notebooks), `models` (the model store), `registry` (images),
    `tracking` (the tracking server's runs and registered models)."""
    return f"{prefix(sandbox)}-{purpose}"


def container_name(sandbox: str, component: str) -> str:
    return f"{prefix(sandbox)}-{component}"


@dataclass
class ContainerPlan:
    """A component container as `up` wants it; `config_hash` decides whether to recreate it."""

    component: str
    image: str
    container_port: int
    host_port: int
    address: str = "127.0.0.1"
    """The host address the port is published on (LiteSettings.address_of)."""
    environment: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    """docker-py memory/CPU limit arguments; none for the platform's own services."""
    user: str = ""
    """The container's user when not the image's (the notebook server in a rootless sandbox)."""
    command: list[str] = field(default_factory=list)
    """The container's command when not the image's."""
    probe: Callable[[str], None] = lambda base_url: None
    """Raises until the component really answers at base_url (http://ADDRESS:PORT)."""

    def name(self, sandbox: str) -> str:
        return container_name(sandbox, self.component)

    def config_hash(self) -> str:
        # The token is in the environment: hash it rather than store it in a label.
        payload = json.dumps(
            [
                self.image,
                self.container_port,
                self.host_port,
                self.address,
                self.environment,
                self.volumes,
                self.limits,
                # Only when set: a host-engine sandbox's hash (and container) stays as it was.
                *([self.user, self.command] if self.user or self.command else []),
            ],
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def base_url(self) -> str:
        """Where this host reaches the component."""
        return f"http://{listen.reach(self.address)}:{self.host_port}"


def _expect_ok(url: str, headers: dict[str, str] | None = None) -> None:
    response = requests.get(url, headers=headers or {}, timeout=5)
    response.raise_for_status()


def registry_plan(spec: SandboxSpec, image: str) -> ContainerPlan:
    return ContainerPlan(
        component="registry",
        image=image,
        container_port=5000,
        host_port=spec.ports.registry,
        address=spec.lite.address_of("registry"),
        volumes={volume_name(spec.name, "registry"): {"bind": "/var/lib/registry", "mode": "rw"}},
        probe=lambda base: _expect_ok(f"{base}/v2/"),
    )


def jupyter_plan(spec: SandboxSpec, image: str, token: str) -> ContainerPlan:
    return ContainerPlan(
        component="jupyter",
        image=image,
        container_port=8888,
        host_port=spec.ports.jupyter,
        address=spec.lite.address_of("jupyter"),
        environment={"JUPYTER_TOKEN": token},
        volumes={
            volume_name(spec.name, "workspace"): {"bind": JUPYTER_WORKDIR, "mode": "rw"},
            volume_name(spec.name, "models"): {"bind": MODEL_STORE_MOUNT, "mode": "ro"},
        },
        # People's code runs in its kernels: the spec's limits keep one seat from starving
        # the others on a shared host.
        limits=workload_limits(spec.resources, 0),
        probe=lambda base: _expect_ok(f"{base}/api/status", {"Authorization": f"token {token}"}),
    )


def tracking_plan(spec: SandboxSpec, image: str, password: str, csrf_key: str) -> ContainerPlan:
    """MLflow's tracking server: runs in sqlite on the `tracking` volume, artifacts in the model
    store, every request (the UI's too) behind HTTP basic auth with the sandbox's secret."""
    address = spec.lite.address_of("tracking")
    # MLflow's DNS-rebinding guard checks each request's Host header (mlflow/server/
    # security_utils.py at 3.17.2): the sandbox's own name for it, this host's loopback, and the
    # address the sandbox listens on; listening on every address admits any name, basic auth
    # still guarding every request.
    hosts = ["tracking", f"tracking:{TRACKING_PORT}", "localhost", "localhost:*", "127.0.0.1",
             "127.0.0.1:*"]
    if address == "0.0.0.0":
        hosts = ["*"]
    elif address != "127.0.0.1":
        hosts += [address, f"{address}:*"]
    return ContainerPlan(
        component="tracking",
        image=image,
        container_port=TRACKING_PORT,
        host_port=spec.ports.tracking,
        address=address,
        environment=server_environment(password, csrf_key),
        volumes={
            volume_name(spec.name, "tracking"): {"bind": TRACKING_DATA, "mode": "rw"},
            volume_name(spec.name, "models"): {"bind": MODEL_STORE_MOUNT, "mode": "rw"},
        },
        command=server_command(hosts),
        probe=lambda base: _expect_ok(f"{base}/api/2.0/mlflow/experiments/search?max_results=1",
                                      basic_auth(TRACKING_USER, password)),
    )


def tracking_client_environment(password: str) -> dict[str, str]:
    """What a process in the sandbox's network needs to log to the tracking server with MLflow's
    own client (its documented environment variables): the notebook's kernels get it."""
    return {"MLFLOW_TRACKING_URI": f"http://tracking:{TRACKING_PORT}",
            "MLFLOW_TRACKING_USERNAME": TRACKING_USER,
            "MLFLOW_TRACKING_PASSWORD": password}


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header of HTTP basic auth."""
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def workload_limits(resources: Resources, gpus: int) -> dict[str, Any]:
    """docker-py arguments every workload container gets: the spec's memory and CPU limits,
    and a device request when it asks for GPUs (the NVIDIA runtime turns it into devices)."""
    # Docker refuses a CPU limit above the cores it has; there it would limit nothing anyway.
    cpus = min(resources.cpus, os.cpu_count() or resources.cpus)
    limits: dict[str, Any] = {
        "mem_limit": resources.memory,
        "nano_cpus": int(cpus * 1e9),
    }
    if gpus:
        limits["device_requests"] = [DeviceRequest(count=gpus, capabilities=[["gpu"]])]
    return limits


def run_kwargs(plan: ContainerPlan, sandbox: str, labels: dict[str, str]) -> dict[str, Any]:
    """docker-py `containers.run` arguments: private network, port on the plan's address only."""
    return {
        "image": plan.image,
        "name": plan.name(sandbox),
        "detach": True,
        "network": network_name(sandbox),
        "ports": {f"{plan.container_port}/tcp": (plan.address, plan.host_port)},
        "environment": plan.environment,
        "volumes": plan.volumes,
        "labels": labels,
        "restart_policy": {"Name": "unless-stopped"},
        "hostname": plan.component,
        **plan.limits,
        **({"user": plan.user} if plan.user else {}),
        **({"command": plan.command} if plan.command else {}),
    }
