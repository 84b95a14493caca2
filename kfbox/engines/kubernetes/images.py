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

    def _require_registry(self) -> None:
        if not self.registry:
            raise StepFailure("no registry the cluster pulls from: set kubernetes.registry in "
                              "kfbox.yaml (host:port/path) for --engine existing")

    def publish(self, image: str, repository: str) -> str:
        """An image this host built (kfbox's own) pushed for the cluster; its pinned
        reference."""
        self._require_registry()
        tag = f"{self.registry}/{repository}:{image.rpartition(':')[2]}"
        self.docker.tag(image, tag)
        return self.docker.push(tag)

    def publish_own(self, component: str, ca_bundle: Path | None) -> str:
        """One of kfbox's own images (`runtime`, `jupyter`, `tracking`: lite's), built on this
        host when its inputs changed and pushed for the cluster as kfbox/<component>."""
        return self.publish(self.docker.component_image(component, ca_bundle),
                            f"kfbox/{component}")

    def build(self, context: Path, repository: str, *, build_args: dict[str, str]) -> BuiltImage:
        self._require_registry()
        started = time.monotonic()
        tag = f"{self.registry}/{repository}:latest"
        try:
            self.docker.build(context, tag, build_args)
            reference = self.docker.push(tag)
        except KfboxError as exc:
            raise StepFailure(f"building {repository}: {first_line(exc)}") from exc
        return BuiltImage(reference, reference.rpartition("@")[2], time.monotonic() - started)
