"""Images on Kubernetes: the journey's image built on the host and pushed to the registry the
cluster pulls from, pinned by digest."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from kfbox.engines.kubernetes.hostdocker import HostDocker
from kfbox.engines.platform import BuiltImage, StepFailure, first_line
from kfbox.host.errors import KfboxError


@dataclass
class KubeImages:
    docker: HostDocker
    registry: str
    """host:port[/path] the cluster pulls from; empty when the sandbox has none."""

    def build(self, context: Path, repository: str, *, build_args: dict[str, str]) -> BuiltImage:
        if not self.registry:
            raise StepFailure("no registry the cluster pulls from: set kubernetes.registry in "
                              "kfbox.yaml (host:port/path) for --engine existing")
        started = time.monotonic()
        tag = f"{self.registry}/{repository}:latest"
        try:
            self.docker.build(context, tag, build_args)
            reference = self.docker.push(tag)
        except KfboxError as exc:
            raise StepFailure(f"building {repository}: {first_line(exc)}") from exc
        return BuiltImage(reference, reference.rpartition("@")[2], time.monotonic() - started)
