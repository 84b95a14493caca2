"""Serving on lite: the scenario's KServe ModelServer in a container, loading from the store."""

from __future__ import annotations

import contextlib
import time

import docker
import requests
from docker.errors import APIError, NotFound

from kfbox.engines.lite.components import workload_limits
from kfbox.engines.platform import (
    MODEL_DIR_ENV,
    MODEL_STORE_MOUNT,
    MODEL_VERSION_ENV,
    Endpoint,
    ServeRequest,
    StepFailure,
    error_line,
)
from kfbox.host import listen
from kfbox.host.config import Resources

SERVER_PORT = 8080


class LiteServing:
    def __init__(
        self,
        client: docker.DockerClient,
        labels: dict[str, str],
        network: str,
        store_volume: str,
        prefix: str,
        resources: Resources,
        address: str,
    ) -> None:
        self.client = client
        self.resources = resources
        self.address = address
        """The host address model servers publish their port on (the sandbox's listen)."""
        self.labels = labels
        self.network = network
        self.store_volume = store_volume
        self.prefix = prefix

    def container_name(self, name: str) -> str:
        return f"{self.prefix}-serve-{name}"

    def deploy(self, request: ServeRequest) -> Endpoint:
        try:
            self.client.images.pull(request.image)
        except APIError as exc:
            raise StepFailure(f"cannot pull {request.image}: {exc.explanation}") from exc
        container = self.client.containers.run(
            request.image,
            command=[
                *request.command,
                f"--model_name={request.model_name}",
                f"--http_port={SERVER_PORT}",
            ],
            name=self.container_name(request.name),
            detach=True,
            network=self.network,
            environment={
                MODEL_DIR_ENV: f"{MODEL_STORE_MOUNT}/{request.model_key}",
                **({MODEL_VERSION_ENV: request.model_version} if request.model_version else {}),
                "PYTHONUNBUFFERED": "1",
            },
            volumes={self.store_volume: {"bind": MODEL_STORE_MOUNT, "mode": "ro"}},
            ports={f"{SERVER_PORT}/tcp": (self.address, None)},  # a free port, on that address
            labels=self.labels,
            **workload_limits(self.resources, request.gpus),
        )
        url = self._wait_ready(container, request)
        return Endpoint(request.name, url, request.model_name)

    def _wait_ready(self, container, request: ServeRequest) -> str:
        deadline = time.monotonic() + request.timeout_s
        url = ""
        while time.monotonic() < deadline:
            container.reload()
            if container.status in ("exited", "dead"):
                logs = container.logs().decode(errors="replace")
                raise StepFailure(f"model server exited: {error_line(logs)}", logs=logs)
            binding = (container.ports.get(f"{SERVER_PORT}/tcp") or [{}])[0]
            if binding.get("HostPort"):
                url = f"http://{listen.reach(self.address)}:{binding['HostPort']}"
                try:
                    if requests.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                        return url
                except requests.RequestException:
                    pass
            time.sleep(0.5)
        logs = container.logs().decode(errors="replace")
        raise StepFailure(
            f"model server not ready within {request.timeout_s:.0f}s: {error_line(logs)}", logs=logs
        )

    def logs(self, name: str) -> str:
        try:
            return (
                self.client.containers.get(self.container_name(name))
                .logs()
                .decode(errors="replace")
            )
        except NotFound:
            return ""

    def delete(self, name: str) -> None:
        with contextlib.suppress(NotFound):  # already gone
            self.client.containers.get(self.container_name(name)).remove(force=True)
