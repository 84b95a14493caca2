"""`kfbox bundle`: the offline bundle for the Kubernetes engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def bundle(
        ctx: typer.Context,
        output: Annotated[Path, typer.Option("--output", "-o", help="Bundle folder to write")],
        profile: Annotated[str, typer.Option(help="core | full")] = "core",
        gpu: Annotated[bool, typer.Option(help="Include the NVIDIA device plugin")] = False,
        images: Annotated[bool, typer.Option(help="Pull and save image tarballs")] = True,
        trust_on_first_use: Annotated[
            bool, typer.Option(help="Pin manifests the lock has no sha256 for, from this download")
        ] = False,
    ) -> None:
        """Write an offline bundle (manifests, lock, image list, image tarballs) for
        `kfbox up --engine kind --from-bundle DIR` on a host with no network."""
        from kfbox.sandbox import paths
        from kfbox.sandbox.cli import err
        from kfbox.sandbox.engines.kubernetes.bundle import write_bundle
        from kfbox.sandbox.engines.kubernetes.catalog import load_catalog
        from kfbox.sandbox.engines.kubernetes.store import ManifestStore
        from kfbox.sandbox.engines.kubernetes.tools import Tools
        from kfbox.sandbox.progress import Reporter

        catalog = load_catalog()
        plan = catalog.plan(catalog.profile(profile, gpu=gpu))
        tools = Tools()
        store = ManifestStore(
            paths.cache_dir("manifests"), tools, trust_on_first_use=trust_on_first_use
        )
        missing = write_bundle(output, catalog, plan, store, tools, Reporter(), with_images=images)
        for image in missing:
            err.print(f"[yellow]![/] not saved (cannot pull here): {image}")
