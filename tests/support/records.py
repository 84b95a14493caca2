"""Run records and certificates built by hand: the judge, writer and reader are under test here,
not the journey, so the records are constructed, never faked as results of a run."""

from __future__ import annotations

from kfbox.harness.certify import Certificate, SuiteSummary, build_certificate
from kfbox.harness.host import GpuInfo, HostFacts
from kfbox.harness.profiles import PROFILES
from kfbox.harness.records import (
    CheckRecord,
    ComponentRecord,
    JourneyRecord,
    RunRecord,
    SandboxRecord,
    StepRecord,
    TrialRecord,
)
from kfbox.harness.requirements import (
    COMPONENTS,
    NOTEBOOK_WORK,
    REQUIREMENTS,
    for_step,
    steps_for,
)
from kfbox.host.config import SandboxSpec

SECRET = "s3cr3t-Tok3n-value"


def journey(variant: str = "core", scenario: str = "digits", **statuses: str) -> JourneyRecord:
    """A journey whose steps passed, each with a passing check of every requirement it proves,
    unless `statuses` says otherwise (step=status: such a step recorded no check)."""
    steps = []
    for index, name in enumerate(steps_for(variant)):
        status = statuses.get(name, "passed")
        test_id = f"test_journey.py::test_step[{variant}-{name}]"
        checks = [CheckRecord(r.id, True, f"{r.id} held", test_id)
                  for r in for_step(name, gpu=variant == "gpu")] if status == "passed" else []
        reason = "" if status == "passed" else f"{name} went {status} on purpose"
        steps.append(StepRecord(name, status, duration_s=2.0 + index, reason=reason,  # type: ignore[arg-type]
                                metrics={"accuracy": 0.95} if name == "train" else {},
                                test_id=test_id, checks=checks))
    return JourneyRecord(
        scenario, variant, "lite", steps,
        curve={"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.3], "accuracy": [0.8, 0.9, 0.95]},
        trials=[TrialRecord("trial-0", {"lr": "0.01"}, 0.93, True),
                TrialRecord("trial-1", {"lr": "0.02"}, 0.96, True, best=True)],
        objective="accuracy", goal="maximize",
    )


def component_checks(*failing: str) -> list[CheckRecord]:
    """A passing check of every requirement checked outside a journey (the platform's and a
    person's notebook work), except those named (a failing one)."""
    return [CheckRecord(r.id, r.id not in failing,
                        f"{r.id} {'failed' if r.id in failing else 'held'}",
                        f"test_{r.where}.py::{r.id}")
            for r in REQUIREMENTS.values() if r.where in (COMPONENTS, NOTEBOOK_WORK)]


def sandbox(*unhealthy: str) -> SandboxRecord:
    components = [
        ComponentRecord(name, name not in unhealthy, "up" if name not in unhealthy else "exited 1",
                        image=f"kfbox/{name}:0123456789ab@sha256:{'ab' * 32}")
        for name in ("jupyter", "registry", "store")
    ]
    return SandboxRecord("kfbox", "lite", "running", components,
                         capabilities={"gpus": 0, "listen": "127.0.0.1", "bundle": "",
                                       "software": {"torch": "2.13.0", "python": "3.11.2"}})


def host() -> HostFacts:
    return HostFacts("Debian", "6.1", "x86_64", "3.11", "Test CPU", 2, 8.0, GpuInfo())


def make_certificate(profile: str = "core", journeys: list[JourneyRecord] | None = None,
                     exit_code: int | None = 0, error: str = "",
                     checks: list[CheckRecord] | None = None) -> Certificate:
    record = RunRecord("digits", [journey()] if journeys is None else journeys,
                       component_checks() if checks is None else checks, sandbox())
    return build_certificate(
        PROFILES[profile], SandboxSpec(), "digits", host=host(),
        suite=SuiteSummary(PROFILES[profile].pytest_markers, exit_code, 21.0, 5, error=error),
        record=record if not error else None,
    )
