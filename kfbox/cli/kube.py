"""`kfbox bundle --engine kind`: the offline bundle for the Kubernetes engine
(engines/kubernetes/bundle.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kfbox.cli.console import err
from kfbox.host.progress import Reporter

if TYPE_CHECKING:
    from kfbox.host.config import SandboxSpec


def kube_bundle(output: Path, spec: SandboxSpec, *, gpu: bool, images: bool,
                trust_on_first_use: bool) -> None:
    """Write an offline bundle (manifests, lock, image lists, image tarballs) for
    `kfbox up --engine kind --from-bundle DIR` on a host with no network."""
    # Imported here for start-up time: the Kubernetes engine loads its clients.
    from kfbox.engines.kubernetes.bundle import make_bundle

    missing = make_bundle(output, spec, gpu=gpu, with_images=images,
                          trust_on_first_use=trust_on_first_use, reporter=Reporter())
    for image in missing:
        err.print(f"[yellow]![/] not saved (cannot pull here): {image}")
