"""`kfbox run` (the main job) and `kfbox test`: the Critical User Journey against the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from kfbox.cli.certify import certify_sandbox
from kfbox.cli.checks import require_running, scenario_option
from kfbox.cli.console import err
from kfbox.cli.console import out as stdout
from kfbox.harness.profiles import JOURNEY_PROFILES, PROFILES, get_profile
from kfbox.host.errors import Interrupted, KfboxError, UsageError
from kfbox.host.progress import Reporter

PLAIN = {"markup": False, "highlight": False, "soft_wrap": True}
"""Lines a person may copy (a digest, a URL): printed as they are, never wrapped."""


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        ctx: typer.Context,
        profile: Annotated[str, typer.Option(help="quick | core | gpu | full")] = "core",
        out: Annotated[
            Path, typer.Option(help="Folder the results bundle is written under")
        ] = Path("kfbox-results"),
        scenario: Annotated[str, typer.Option(help="Scenario name or folder")] = "digits",
        gpu: Annotated[str | None, typer.Option(help="auto | on | off")] = None,
        provision: Annotated[
            bool, typer.Option(help="Install and start the Docker engine when it is missing")
        ] = True,
    ) -> None:
        """The main job: bring the sandbox up (provisioning Docker if missing), run the whole
        journey, write the results bundle and end with the verdict. Exit 0 only if certified."""
        # Imported here for start-up time: the engines load the Docker SDK.
        from kfbox.engines.lifecycle import bring_up

        get_profile(profile)  # bad input fails before anything starts
        scenario_option(scenario)
        spec = ctx.obj.spec(gpu=gpu)
        bring_up(spec, Reporter(), provision=provision)
        certify_sandbox(spec, profile, out, scenario)

    @app.command()
    def test(
        ctx: typer.Context,
        profile: Annotated[str, typer.Option(help="quick | core | gpu")] = "core",
        scenario: Annotated[str, typer.Option(help="Scenario name or folder")] = "digits",
        out: Annotated[Path, typer.Option(help="Folder for this run's logs and workspace")] = Path(
            "kfbox-results"
        ),
        require_gpu: Annotated[
            bool, typer.Option(help="Fail, rather than skip, GPU steps on a host without one")
        ] = False,
        keep: Annotated[
            bool, typer.Option(help="Keep the run's workloads (model server, run namespace)")
        ] = False,
    ) -> None:
        """Run the journey (notebook → build → train → tune → serve) against the sandbox;
        each step prints its status, duration and metrics. Exits with pytest's code."""
        # Imported here for start-up time: the runner loads pytest.
        from kfbox.harness.runner import run_suite

        if profile not in JOURNEY_PROFILES:
            raise UsageError(f"unknown --profile {profile!r}; use {' | '.join(JOURNEY_PROFILES)}")
        scenario_option(scenario)
        spec = ctx.obj.spec()
        require_running(spec)
        run_dir = out / f"test-{profile}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
        outcome = run_suite(
            PROFILES[profile].journey(), run_dir, spec, scenario=scenario,
            require_gpu=require_gpu, keep=keep,
        )
        err.print(f"run folder: {run_dir}")
        if outcome.interrupted:
            raise Interrupted("the run was interrupted; its workloads were removed")
        raise typer.Exit(outcome.pytest_exit_code)

    @app.command()
    def reproduce(
        ctx: typer.Context,
        results: Annotated[Path, typer.Argument(
            help="The results bundle (folder or .tar.gz) of a `kfbox certify` run")],
        out: Annotated[Path, typer.Option(help="Folder for the job's logs")] = Path(
            "kfbox-results"),
    ) -> None:
        """Train the served model again from a certificate's lineage (the same image digest,
        parameters and nodes) on the running sandbox; exit 0 when its metrics match the
        certificate's within the scenario's tolerance."""
        # Imported here for start-up time: the certificate loads pydantic, the scenario YAML.
        from kfbox.engines.platform import StepFailure
        from kfbox.harness.certificate.results import read_bundle
        from kfbox.harness.reproduce import lineage_of
        from kfbox.harness.reproduce import reproduce as train_again
        from kfbox.scenarios.scenario import load_scenario

        certificate = read_bundle(results)
        lineage = lineage_of(certificate, results)
        scenario = load_scenario(certificate.configuration.scenario).for_variant(
            lineage["scenario"]["variant"])
        engine = require_running(ctx.obj.spec())
        work = out / f"reproduce-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
        try:
            done = train_again(engine, lineage, scenario, work)
        except StepFailure as exc:
            raise KfboxError(f"reproducing run {lineage['run']['id']}: {exc}",
                             fix="certify again on this sandbox if its registry lost the image"
                             ) from None
        arguments = ", ".join(f"{k}={v}" for k, v in done.parameters.items())
        stdout.print(f"run {done.run}: {done.image}, {arguments}", **PLAIN)
        for c in done.compared:
            verb = "matches" if c.matched else "differs from"
            stdout.print(f"  {c.metric}={c.again} {verb} the certificate's {c.certified} "
                         f"(tolerance {done.tolerance:g})", **PLAIN)
        stdout.print(f"{'reproduced' if done.matched else 'NOT reproduced'} in "
                     f"{done.duration_s:.1f} s", **PLAIN)
        raise typer.Exit(0 if done.matched else 1)
