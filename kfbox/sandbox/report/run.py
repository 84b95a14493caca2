"""Runs a profile's suites through the journey runner and turns whatever happens into a report."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from kfbox.sandbox.config import SandboxSpec
from kfbox.sandbox.errors import KfboxError
from kfbox.sandbox.report.document import Report, SuiteSummary, build_report
from kfbox.sandbox.report.host import HostFacts, collect_host_facts
from kfbox.sandbox.report.junit import junit_counts
from kfbox.sandbox.report.profiles import Profile

RUNNER_MODULE = "kfbox.cuj.runner"


@dataclass
class CertifyRun:
    report: Report
    exit_code: int
    """0 when certified; the runner error's own code when the suite could not run; else 1."""
    junit_xml: Path | None = None
    logs_dir: Path | None = None


def run_profile(profile: Profile, spec: SandboxSpec, folder: Path) -> CertifyRun:
    """Run the suites into `folder`; never raises for a suite that fails or cannot start (the
    bundle is written on every run), so a runner error becomes the report's first reason."""
    host = collect_host_facts()
    suite = SuiteSummary(pytest_markers=profile.pytest_markers)
    started = time.monotonic()
    try:
        from kfbox.cuj.runner import run_suite

        outcome = run_suite(profile.name, folder, spec)
    except ModuleNotFoundError as exc:
        if exc.name != RUNNER_MODULE:
            raise
        return _not_run(profile, spec, host, suite, started,
                        f"the journey runner ({RUNNER_MODULE}) is not installed in this kfbox", 1)
    except KfboxError as exc:
        return _not_run(profile, spec, host, suite, started, exc.line(), exc.exit_code)
    except Exception as exc:
        logs = folder / "logs"
        logs.mkdir(exist_ok=True)
        (logs / "certify-error.txt").write_text(traceback.format_exc())
        return _not_run(profile, spec, host, suite, started,
                        f"the suite crashed: {type(exc).__name__}: {exc} "
                        "(traceback in logs/certify-error.txt)", 1)
    suite.duration_s = round(time.monotonic() - started, 3)
    suite.exit_code = outcome.pytest_exit_code
    for key, value in (junit_counts(outcome.junit_xml) or {}).items():
        setattr(suite, key, value)
    report = build_report(profile, engine=outcome.engine, sandbox=spec.name, host=host,
                          suite=suite, journeys=outcome.journeys, components=outcome.components)
    return CertifyRun(report, 0 if report.certified else 1, outcome.junit_xml, outcome.logs_dir)


def _not_run(
    profile: Profile,
    spec: SandboxSpec,
    host: HostFacts,
    suite: SuiteSummary,
    started: float,
    error: str,
    exit_code: int,
) -> CertifyRun:
    suite.duration_s = round(time.monotonic() - started, 3)
    suite.error = error
    report = build_report(profile, engine=spec.engine, sandbox=spec.name, host=host, suite=suite)
    return CertifyRun(report, exit_code)
