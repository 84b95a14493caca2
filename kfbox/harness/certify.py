"""Certification: run a profile's suites, judge its requirements, and build the certificate that
report.json holds (what was proven, on which configuration, with which software, and how)."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from kfbox import __version__
from kfbox.harness.host import HostFacts, collect_host_facts
from kfbox.harness.profiles import Profile
from kfbox.harness.records import JourneyRecord, RunRecord, SandboxRecord
from kfbox.harness.verdict import RequirementResult, Verdict, judge_profile
from kfbox.host.config import SandboxSpec
from kfbox.host.errors import Interrupted, KfboxError

SCHEMA_VERSION = 2
"""report.json's layout version; bumped on any change a reader of the previous one could
misread (kfbox/harness/certificate/SCHEMA.md)."""
REPORT_KIND = "kfbox-conformance-report"


@dataclass
class SuiteSummary:
    pytest_markers: str
    exit_code: int | None = None
    """pytest's exit code; null when the suite never started."""
    duration_s: float = 0.0
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    error: str = ""
    """Why the suite did not run or did not finish, when it did not."""


@dataclass
class Configuration:
    """What was certified: the sandbox, how it was installed, and what the run asked of it."""

    engine: str
    sandbox: str
    profile: str
    scenario: str
    gpus: int = 0
    """GPUs the platform offered to workloads."""
    source: Literal["online", "bundle"] = "online"
    bundle: str = ""
    """sha256 of the offline bundle the sandbox was installed from (source: bundle)."""
    listen: str = "127.0.0.1"
    """The host address the sandbox's ports listen on."""


@dataclass
class Certificate:
    profile: str
    certified: bool
    configuration: Configuration
    host: HostFacts
    suite: SuiteSummary
    software: dict[str, str] = field(default_factory=dict)
    """name → version of what was certified, as the engine declares it (plus kfbox)."""
    requirements: list[RequirementResult] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    journeys: list[JourneyRecord] = field(default_factory=list)
    sandbox: SandboxRecord | None = None
    kfbox_version: str = __version__
    created_at: str = ""
    schema_version: int = SCHEMA_VERSION
    kind: str = REPORT_KIND


def build_certificate(
    profile: Profile,
    spec: SandboxSpec,
    scenario: str,
    *,
    host: HostFacts,
    suite: SuiteSummary,
    record: RunRecord | None,
) -> Certificate:
    """The certificate of a run; a suite that never ran (suite.error) certifies nothing."""
    requirements, verdicts = judge_profile(profile, record, suite.exit_code)
    if suite.error:
        for item in verdicts.values():
            item.certified = False
            item.reasons.insert(0, suite.error)
    sandbox = record.sandbox if record is not None else None
    declared = sandbox.capabilities if sandbox is not None else {}
    configuration = Configuration(
        engine=spec.engine,
        sandbox=spec.name,
        profile=profile.name,
        scenario=scenario,
        gpus=int(declared.get("gpus") or 0),
        source="bundle" if declared.get("bundle") else "online",
        bundle=str(declared.get("bundle") or ""),
        listen=str(declared.get("listen") or "127.0.0.1"),
    )
    return Certificate(
        profile=profile.name,
        certified=verdicts[profile.name].certified,
        configuration=configuration,
        host=host,
        suite=suite,
        software={"kfbox": __version__, **(declared.get("software") or {})},
        requirements=requirements,
        verdicts=verdicts,
        journeys=record.journeys if record is not None else [],
        sandbox=sandbox,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


@dataclass
class CertifyRun:
    certificate: Certificate
    exit_code: int
    """0 when certified; the runner error's own code when the suite could not run; else 1."""
    junit_xml: Path | None = None
    logs_dir: Path | None = None


def certify(profile: Profile, spec: SandboxSpec, folder: Path, *, scenario: str) -> CertifyRun:
    """Run the profile's suites into `folder` and judge them; never raises for a suite that
    fails or cannot start (the bundle is written on every run): the error becomes the
    certificate's first reason."""
    # Imported here for start-up time: the runner loads pytest, which `kfbox results` (reading
    # certificates through this module) never uses.
    from kfbox.harness.runner import run_suite

    host = collect_host_facts()
    suite = SuiteSummary(pytest_markers=profile.pytest_markers)
    started = time.monotonic()

    def not_run(error: str, exit_code: int) -> CertifyRun:
        suite.duration_s = round(time.monotonic() - started, 3)
        suite.error = error
        return CertifyRun(
            build_certificate(profile, spec, scenario, host=host, suite=suite, record=None),
            exit_code,
        )

    try:
        outcome = run_suite(profile, folder, spec, scenario=scenario)
    except KfboxError as exc:
        return not_run(exc.line(), exc.exit_code)
    except Exception as exc:
        logs = folder / "logs"
        logs.mkdir(exist_ok=True)
        (logs / "certify-error.txt").write_text(traceback.format_exc())
        return not_run(f"the suite crashed: {type(exc).__name__}: {exc} "
                       "(traceback in logs/certify-error.txt)", 1)
    suite.duration_s = round(time.monotonic() - started, 3)
    suite.exit_code = outcome.pytest_exit_code
    for key, value in outcome.counts.items():
        setattr(suite, key, value)
    if outcome.interrupted:
        suite.error = "the run was interrupted (Ctrl-C)"
    certificate = build_certificate(profile, spec, scenario, host=host, suite=suite,
                                    record=outcome.record)
    exit_code = (Interrupted.exit_code if outcome.interrupted
                 else 0 if certificate.certified else 1)
    return CertifyRun(certificate, exit_code, outcome.junit_xml, outcome.logs_dir)
