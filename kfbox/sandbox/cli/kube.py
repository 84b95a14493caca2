"""`kfbox bundle`: the offline bundle for the Kubernetes engine (engines/kubernetes/bundle.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def bundle(
        ctx: typer.Context,
        output: Annotated[Path, typer.Option("--output", "-o", help="Bundle folder to write")],
        platform: Annotated[str | None, typer.Option(help="Kubeflow platform: core | full")] = None,
        gpu: Annotated[bool, typer.Option(help="Include the NVIDIA device plugin")] = False,
        images: Annotated[bool, typer.Option(help="Pull and save image tarballs")] = True,
        trust_on_first_use: Annotated[
            bool, typer.Option(help="Pin manifests the lock has no sha256 for, from this download")
        ] = False,
    ) -> None:
        """Write an offline bundle (manifests, lock, image lists, image tarballs) for
        `kfbox up --engine kind --from-bundle DIR` on a host with no network."""
        from kfbox.sandbox.cli import err
        from kfbox.sandbox.engines.kubernetes.bundle import make_bundle
        from kfbox.sandbox.progress import Reporter

        spec = ctx.obj.spec(platform=platform)
        missing = make_bundle(output, spec, gpu=gpu, with_images=images,
                              trust_on_first_use=trust_on_first_use, reporter=Reporter())
        for image in missing:
            err.print(f"[yellow]![/] not saved (cannot pull here): {image}")
