"""The verdict: each requirement a profile names judged from the checks recorded against it,
and the profile certified only when every MUST requirement passed and the suite ran whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kfbox.harness.profiles import PROFILES, Profile
from kfbox.harness.records import CheckRecord, RunRecord, StepRecord
from kfbox.harness.requirements import COMPONENTS, NOTEBOOK_WORK, Level, Requirement

RequirementStatus = Literal["passed", "failed", "skipped", "blocked", "interrupted", "not-run"]

SUITE_BROKEN = {2: "was interrupted", 3: "hit an internal error", 4: "was called wrongly",
                5: "collected no tests"}
"""pytest's exit codes that mean the suite itself did not run to completion."""


@dataclass
class RequirementResult:
    id: str
    level: Level
    where: str
    """The journey (its variant) or `components`, where it was checked."""
    text: str
    status: RequirementStatus
    reason: str = ""
    """Why it did not pass: the failed check, or the step's outcome when nothing checked it."""
    evidence: list[CheckRecord] = field(default_factory=list)
    """Every check made against it (test id, outcome, what was compared)."""

    @property
    def label(self) -> str:
        return f"{self.id} [{self.where}]"


@dataclass
class Verdict:
    certified: bool
    reasons: list[str] = field(default_factory=list)
    """Why not: each MUST requirement that did not pass, and a broken suite; empty if certified."""
    warnings: list[str] = field(default_factory=list)
    """SHOULD requirements that did not pass: reported, never blocking."""


def judge(requirement: Requirement, where: str, record: RunRecord | None) -> RequirementResult:
    result = RequirementResult(requirement.id, requirement.level, where, requirement.text,
                               "not-run")
    if record is None:
        result.reason = "the suite recorded nothing"
        return result
    if where in (COMPONENTS, NOTEBOOK_WORK):
        result.evidence = [c for c in record.checks if c.requirement == requirement.id]
        step: StepRecord | None = None
        missing = "no test checked it"
    else:
        journey = next((j for j in record.journeys if j.variant == where), None)
        if journey is None:
            result.reason = f"no {where} journey ran"
            return result
        result.evidence = [c for s in journey.steps for c in s.checks
                           if c.requirement == requirement.id]
        step = journey.step(requirement.where)
        missing = f"step {requirement.where!r} did not run"
    failed = [c for c in result.evidence if not c.passed]
    if failed:
        result.status, result.reason = "failed", failed[0].detail
    elif result.evidence:
        result.status = "passed"
    elif step is not None:
        # A failed step stopped before this check; a passed one never made it: neither passes.
        result.status = {"failed": "blocked", "passed": "not-run"}.get(step.status, step.status)
        result.reason = (f"step {step.name!r} {step.status} before checking it"
                         + (f": {step.reason}" if step.reason else ""))
    else:
        result.reason = missing
    return result


def verdict(results: list[RequirementResult], exit_code: int | None, *, strict: bool) -> Verdict:
    """Certified when every MUST result passed and the suite ran whole; `strict` (the run's own
    profile) also refuses a failed test outside any requirement's checks."""
    reasons = [f"{r.label} {r.status}: {r.reason}" for r in results
               if r.level == "MUST" and r.status != "passed"]
    warnings = [f"{r.label} {r.status}: {r.reason}" for r in results
                if r.level == "SHOULD" and r.status != "passed"]
    if exit_code in SUITE_BROKEN:
        reasons.append(f"the test suite {SUITE_BROKEN[exit_code]} (pytest exit {exit_code})")
    elif strict and exit_code and not reasons:
        reasons.append(f"a test failed outside the requirements' checks (pytest exit "
                       f"{exit_code}); see junit.xml")
    return Verdict(certified=not reasons, reasons=reasons, warnings=warnings)


def judge_profile(
    profile: Profile, record: RunRecord | None, exit_code: int | None
) -> tuple[list[RequirementResult], dict[str, Verdict]]:
    """Every requirement of the profile judged, and the verdicts: the profile's own first, then
    those of the profiles it includes (from the same results)."""
    results = [judge(r, where, record) for r, where in profile.requirements()]
    verdicts = {profile.name: verdict(results, exit_code, strict=True)}
    for name in profile.includes:
        wanted = {(r.id, where) for r, where in PROFILES[name].requirements()}
        subset = [r for r in results if (r.id, r.where) in wanted]
        verdicts[name] = verdict(subset, exit_code, strict=False)
    return results, verdicts
