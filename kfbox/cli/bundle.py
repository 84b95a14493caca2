"""`kfbox bundle`: everything a machine with no network needs, for the lite engine (one archive,
the default) or the Kubernetes engine (`--engine kind`: a folder of manifests and images)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kfbox.cli.console import out
from kfbox.cli.kube import kube_bundle
from kfbox.host.errors import UsageError
from kfbox.host.progress import Reporter

if TYPE_CHECKING:
    from kfbox.host.config import SandboxSpec


def _lite(output: Path | None, spec: SandboxSpec, verified_with: Path | None) -> None:
    # Imported here for start-up time: the writer loads the Docker SDK and the harness, the
    # manifest pydantic.
    from kfbox.apps.offline.writer import write_lite_bundle
    from kfbox.host.offline.manifest import size_text

    reporter = Reporter()
    written = write_lite_bundle(output, spec, reporter, verified_with=verified_with)
    sizes = ", ".join(f"{part} {size_text(size)}" for part, size in
                      written.manifest.sizes.items())
    minutes, seconds = divmod(round(written.seconds), 60)
    out.print(f"bundle: {written.path} ({size_text(written.path.stat().st_size)}: {sizes}), "
              f"written in {minutes}m{seconds:02d}s", soft_wrap=True)
    out.print(f"sha256: {written.sha256} (in {written.path.name}.sha256)", soft_wrap=True)
    verified = written.manifest.verified
    if verified is not None:
        out.print(f"verified with: {verified.report} (profile {verified.profile}, certified)",
                  soft_wrap=True)
    else:
        reporter.warn("not verified: pass --verified-with RESULTS from `kfbox certify` on the "
                      "sandbox these images run, so the manifest names its certificate")
    name = written.path.name
    out.print(f"on the machine with no network, as root: tar -xf {name} --occurrence "
              f"bootstrap.sh && sh bootstrap.sh {name}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def bundle(
        ctx: typer.Context,
        output: Annotated[Path | None, typer.Option(
            "--output", "-o",
            help="lite: the .tar to write, or a folder for it (default: "
            "./kfbox-lite-VERSION-OSARCH.tar); kind: the folder to write")] = None,
        engine: Annotated[str | None, typer.Option(help="lite | kind")] = None,
        verified_with: Annotated[Path | None, typer.Option(
            help="lite: the results (folder or .tar.gz) of `kfbox certify` on the sandbox "
            "whose images go in; the manifest names that certificate")] = None,
        platform: Annotated[str | None, typer.Option(
            help="kind: the Kubeflow platform: core | full")] = None,
        gpu: Annotated[bool | None, typer.Option(
            help="kind: include the NVIDIA device plugin")] = None,
        images: Annotated[bool, typer.Option(help="kind: pull and save image tarballs")] = True,
        trust_on_first_use: Annotated[bool | None, typer.Option(
            help="kind: pin manifests the lock has no sha256 for, from this download")] = None,
    ) -> None:
        """Write an offline bundle. lite (the default): one .tar (and its .sha256) that takes a
        fresh machine of this OS and architecture to a certified sandbox with no network
        (kfbox and its wheels, the Docker engine's Debian packages, the images, a manifest of
        digests, and bootstrap.sh). kind: manifests, lock and image tarballs for
        `kfbox up --engine kind --from-bundle DIR`."""
        # Imported here for start-up time: the engines load the Docker SDK.
        from kfbox.engines import engine_class

        spec = ctx.obj.spec(engine=engine, **{"kubernetes.platform": platform})
        if engine_class(spec.engine).features.bundle == "archive":
            kind_flags = {"--platform": platform is not None, "--gpu": gpu is not None,
                          "--no-images": not images,
                          "--trust-on-first-use": trust_on_first_use is not None}
            given = [flag for flag, used in kind_flags.items() if used]
            if given:
                raise UsageError(f"{given[0]} is for --engine kind",
                                 fix="a lite bundle always holds the whole platform; drop it")
            _lite(output, spec, verified_with)
            return
        if verified_with is not None:
            raise UsageError("--verified-with is for the lite engine",
                             fix="drop it, or bundle the lite engine (--engine lite)")
        if output is None:
            raise UsageError(f"--engine {spec.engine} needs --output FOLDER",
                             fix=f"e.g. kfbox bundle --engine {spec.engine} "
                             f"-o ./kfbox-{spec.engine}-bundle")
        kube_bundle(output, spec, gpu=bool(gpu), images=images,
                    trust_on_first_use=bool(trust_on_first_use))
