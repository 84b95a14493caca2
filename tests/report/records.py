"""Journey records and reports built by hand: the writer, reader and verdict are under test here,
not the journey, so the records are constructed, never faked as results of a run."""

from __future__ import annotations

from kfbox.sandbox.engines.base import ComponentStatus
from kfbox.sandbox.report.document import Report, SuiteSummary, build_report
from kfbox.sandbox.report.host import GpuInfo, HostFacts
from kfbox.sandbox.report.model import JOURNEY_STEPS, JourneyRecord, StepRecord
from kfbox.sandbox.report.profiles import PROFILES

SECRET = "s3cr3t-Tok3n-value"


def journey(marker: str = "core", scenario: str = "digits", **statuses: str) -> JourneyRecord:
    """A journey whose steps passed unless `statuses` says otherwise (step=status)."""
    steps = []
    for index, name in enumerate(JOURNEY_STEPS):
        status = statuses.get(name, "passed")
        reason = "" if status == "passed" else f"{name} went {status} on purpose"
        steps.append(StepRecord(name, status, duration_s=2.0 + index, reason=reason,
                                metrics={"accuracy": 0.95} if name == "train" else {},
                                markers=[marker]))
    return JourneyRecord(scenario, "lite", steps)


def components(*unhealthy: str) -> list[ComponentStatus]:
    return [
        ComponentStatus(name, name not in unhealthy, "up" if name not in unhealthy else "exited 1",
                        image=f"127.0.0.1:5000/kfbox/{name}:0.1.0@sha256:{'ab' * 32}")
        for name in ("jupyter", "registry", "store")
    ]


def host() -> HostFacts:
    return HostFacts("Debian", "6.1", "x86_64", "3.11", "Test CPU", 2, 8.0, GpuInfo())


def make_report(profile: str = "core", journeys: list[JourneyRecord] | None = None,
                exit_code: int | None = 0, error: str = "") -> Report:
    return build_report(
        PROFILES[profile], engine="lite", sandbox="kfbox", host=host(),
        suite=SuiteSummary(PROFILES[profile].pytest_markers, exit_code, 21.0, 5, error=error),
        journeys=[journey()] if journeys is None else journeys, components=components(),
    )
