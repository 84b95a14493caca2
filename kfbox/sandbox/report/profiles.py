"""Conformance profiles (what each one requires) and the verdict on whether a run meets one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kfbox.sandbox.engines.base import ComponentStatus
from kfbox.sandbox.errors import UsageError
from kfbox.sandbox.report.model import JOURNEY_STEPS, JourneyRecord


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    pytest_markers: str
    """The `pytest -m` expression that selects the profile's tests."""
    journeys: tuple[str, ...]
    """Markers naming the journeys that must run: one or more journeys per marker, each with
    every required step passed."""
    required_steps: tuple[str, ...] = JOURNEY_STEPS
    needs_gpu: bool = False
    component_checks: bool = False
    """Every component the engine reports must be healthy (and at least one reported)."""
    includes: tuple[str, ...] = ()
    """Profiles this one covers; their verdicts are reported alongside."""


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile("quick", "one CPU journey with minimal trials", "quick", journeys=("quick",)),
        Profile("core", "the full CPU journey", "core", journeys=("core",)),
        Profile("gpu", "the journey with GPU requests", "gpu", journeys=("gpu",), needs_gpu=True),
        Profile(
            "full",
            "core + gpu + every component check",
            "core or gpu or components",
            journeys=("core", "gpu"),
            needs_gpu=True,
            component_checks=True,
            includes=("core", "gpu"),
        ),
    )
}

JOURNEY_PROFILES: tuple[str, ...] = tuple(
    name for name, profile in PROFILES.items() if profile.journeys == (name,)
)
"""Profiles that are one journey each (quick, core, gpu): what `kfbox test` runs."""

# pytest's exit codes that mean the suite itself did not run to completion.
_SUITE_BROKEN = {2: "was interrupted", 3: "hit an internal error", 4: "was called wrongly",
                 5: "collected no tests"}


@dataclass
class Verdict:
    certified: bool
    reasons: list[str] = field(default_factory=list)
    """Why it is not certified; empty when certified."""


def get_profile(name: str) -> Profile:
    """The named profile; a UsageError (exit 2) naming the allowed ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        allowed = "|".join(PROFILES)
        raise UsageError(f"unknown profile {name!r}; use --profile {allowed}") from None


def _journey_reasons(profile: Profile, kind: str, journeys: Sequence[JourneyRecord]) -> list[str]:
    matching = [j for j in journeys if kind in j.markers]
    if not matching:
        return [f"no {kind!r} journey ran (no step carried the pytest marker {kind!r})"]
    reasons = []
    for journey in matching:
        for name in profile.required_steps:
            step = journey.step(name)
            where = f"{kind} journey {journey.scenario!r}: step {name!r}"
            if step is None:
                reasons.append(f"{where} did not run")
            elif step.status == "skipped":
                # A skip is never a pass: the step's reason says what was missing.
                reasons.append(f"{where} was skipped: {step.reason or 'no reason given'}")
            elif step.status != "passed":
                reasons.append(f"{where} {step.status}: {step.reason or 'no reason given'}")
    return reasons


def _component_reasons(components: Sequence[ComponentStatus]) -> list[str]:
    if not components:
        return ["no component reported its status"]
    return [f"component {c.name!r} is unhealthy: {c.detail}" for c in components if not c.healthy]


def verdict(
    profile: Profile | str,
    journeys: Sequence[JourneyRecord],
    components: Sequence[ComponentStatus],
    *,
    suite_exit_code: int | None = None,
) -> Verdict:
    """Certified only when every journey the profile requires ran with every required step
    passed, components are healthy where the profile checks them, and the suite itself (pytest,
    when its exit code is given) did not fail outside the journey steps."""
    if isinstance(profile, str):
        profile = get_profile(profile)
    reasons: list[str] = []
    for kind in profile.journeys:
        reasons += _journey_reasons(profile, kind, journeys)
    if profile.component_checks:
        reasons += _component_reasons(components)
    if suite_exit_code in _SUITE_BROKEN:
        what = _SUITE_BROKEN[suite_exit_code]
        reasons.append(f"the test suite {what} (pytest exit {suite_exit_code})")
    elif suite_exit_code and not reasons:
        # Every journey step passed, so a failure sits in another test (e.g. a component check).
        reasons.append(f"a test outside the journey steps failed (pytest exit {suite_exit_code}); "
                       "see junit.xml")
    return Verdict(certified=not reasons, reasons=reasons)


def verdicts(
    profile: Profile,
    journeys: Sequence[JourneyRecord],
    components: Sequence[ComponentStatus],
    *,
    suite_exit_code: int | None = None,
) -> dict[str, Verdict]:
    """The run profile's verdict first, then those of the profiles it includes. A failed test
    in the run cannot be pinned on an included profile, so only a broken suite counts there."""
    result = {profile.name: verdict(profile, journeys, components, suite_exit_code=suite_exit_code)}
    broken = suite_exit_code if suite_exit_code in _SUITE_BROKEN else None
    for name in profile.includes:
        result[name] = verdict(PROFILES[name], journeys, components, suite_exit_code=broken)
    return result
