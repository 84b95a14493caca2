"""`kfbox certify` and `kfbox results`: run a conformance profile, write and re-read the results
bundle."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kfbox.cli.checks import require_running, scenario_option
from kfbox.cli.console import out as stdout
from kfbox.harness.profiles import PROFILES, get_profile
from kfbox.host.errors import KfboxError, UsageError

if TYPE_CHECKING:
    from kfbox.host.config import SandboxSpec

MODES = ("summary", "detailed")


class NotCertified(KfboxError):
    """The profile was not certified: the one line CI shows last, with the run's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check_writable(out: Path) -> None:
    """UsageError (exit 2) when --out cannot be a folder this user writes, found without
    creating anything: bad input is refused before anything is made."""
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    problem = ("is not a folder" if not probe.is_dir()
               else "" if os.access(probe, os.W_OK | os.X_OK) else "is not writable")
    if problem:
        raise UsageError(
            f"--out {str(out)!r} is not writable ({probe} {problem})",
            fix="give a folder you can write, e.g. --out ./kfbox-results",
        )


def bundle_folder(out: Path, profile: str) -> Path:
    """A new, empty folder under --out for this run (check_writable first)."""
    name = f"kfbox-{profile}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    folder, attempt = out / name, 1
    while folder.exists():  # runs within one second get their own folders: -2, -3, ...
        attempt += 1
        folder = out / f"{name}-{attempt}"
    folder.mkdir(parents=True)
    return folder


def _kubeconfig_overrides(kubeconfig: Path | None) -> dict[str, Any]:
    """--kubeconfig certifies that cluster: the spec's engine becomes `existing`."""
    if kubeconfig is None:
        return {}
    if not kubeconfig.is_file():
        raise UsageError(
            f"--kubeconfig {str(kubeconfig)!r} is not a file",
            fix="give the kubeconfig of the cluster to certify",
        )
    return {"engine": "existing", "kubernetes.kubeconfig": kubeconfig}


def certify_sandbox(spec: SandboxSpec, profile: str, out: Path, scenario: str) -> None:
    """Certify the sandbox `spec` names against `profile` with `scenario`: run, write the
    bundle, print the summary and the verdict; NotCertified (non-zero exit) unless certified.
    Bad input and a sandbox that cannot be tested fail before anything is written."""
    # Imported here for start-up time: the certificate loads pydantic and jinja2.
    from kfbox.harness.certificate.console import summary
    from kfbox.harness.certificate.document import masked
    from kfbox.harness.certificate.results import write_bundle
    from kfbox.harness.certify import certify

    chosen = get_profile(profile)
    scenario_option(scenario)
    check_writable(out)
    require_running(spec)
    folder = bundle_folder(out, chosen.name)
    run = certify(chosen, spec, folder, scenario=scenario)
    started = time.perf_counter()
    paths = write_bundle(run.certificate, folder, junit_xml=run.junit_xml,
                         logs_dir=run.logs_dir)
    seconds = time.perf_counter() - started
    stdout.print(summary(masked(run.certificate)))
    stdout.print(
        f"results bundle: {paths.folder} (+ {paths.tarball.name}), written in {seconds:.2f}s",
        soft_wrap=True,
    )
    if run.exit_code:
        why = run.certificate.suite.error or "see the reasons above"
        raise NotCertified(f"profile {chosen.name!r} is not certified: {why}", run.exit_code)


def compare_bundles(bundles: list[Path]) -> None:
    """Print how the certificates compare; typer.Exit(1) when any field differs."""
    # Imported here for start-up time: the certificate loads pydantic and jinja2.
    from kfbox.harness.certificate.compare import compare, render
    from kfbox.harness.certificate.results import read_bundle

    if len(bundles) < 2:
        raise UsageError("--compare needs two or more results bundles",
                         fix="e.g. kfbox results --compare seat1.tar.gz seat2.tar.gz")
    comparison = compare([read_bundle(b) for b in bundles], [str(b) for b in bundles])
    stdout.print(render(comparison))
    if not comparison.identical:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command()
    def certify(
        ctx: typer.Context,
        profile: Annotated[
            str, typer.Option(help=f"Conformance profile: {' | '.join(PROFILES)}")
        ] = "core",
        out: Annotated[
            Path, typer.Option(help="Folder the results bundle is written under")
        ] = Path("kfbox-results"),
        kubeconfig: Annotated[
            Path | None, typer.Option(help="Certify this cluster (engine 'existing') instead")
        ] = None,
        scenario: Annotated[str, typer.Option(help="Scenario name or folder")] = "digits",
    ) -> None:
        """Run a profile's suites, write the results bundle (folder + .tar.gz, pass or fail) and
        print a summary; exit 0 only when the profile is certified."""
        spec = ctx.obj.spec(**_kubeconfig_overrides(kubeconfig))
        certify_sandbox(spec, profile, out, scenario)

    @app.command()
    def results(
        bundles: Annotated[list[Path], typer.Argument(
            help="A results bundle (folder or .tar.gz) from certify (two or more with --compare)")],
        mode: Annotated[str, typer.Option(help="summary | detailed")] = "summary",
        compare: Annotated[bool, typer.Option(
            "--compare", help="Compare certificates: the same offline bundle, verdicts, software "
            "and configuration? Lists what differs; exit 1 when anything does")] = False,
    ) -> None:
        """Re-read a results bundle and show its verdict and steps, or compare several."""
        # Imported here for start-up time: the certificate loads pydantic and jinja2.
        from kfbox.harness.certificate.console import detailed, summary
        from kfbox.harness.certificate.results import read_bundle

        if compare:
            compare_bundles(bundles)
            return
        if len(bundles) != 1:
            raise UsageError(f"{len(bundles)} results bundles given",
                             fix="give one results bundle, or compare them: --compare A B ...")
        if mode not in MODES:
            raise UsageError(f"unknown --mode {mode!r}; use --mode {'|'.join(MODES)}")
        view = summary if mode == "summary" else detailed
        stdout.print(view(read_bundle(bundles[0])))
