"""The verdict: only a run whose required steps all passed certifies; a skip is never a pass."""

from __future__ import annotations

import pytest
from records import components, journey

from kfbox.sandbox.errors import UsageError
from kfbox.sandbox.report.model import JOURNEY_STEPS
from kfbox.sandbox.report.profiles import PROFILES, get_profile, verdict, verdicts


def test_profiles_and_their_pytest_markers() -> None:
    assert {n: p.pytest_markers for n, p in PROFILES.items()} == {
        "quick": "quick", "core": "core", "gpu": "gpu", "full": "core or gpu or components"}
    assert [n for n, p in PROFILES.items() if p.needs_gpu] == ["gpu", "full"]
    assert all(p.required_steps == JOURNEY_STEPS for p in PROFILES.values())


@pytest.mark.parametrize("profile", ["quick", "core", "gpu"])
def test_a_journey_with_every_step_passed_certifies(profile: str) -> None:
    result = verdict(profile, [journey(profile)], components(), suite_exit_code=0)
    assert result.certified and result.reasons == []


@pytest.mark.parametrize("status", ["failed", "skipped", "blocked"])
@pytest.mark.parametrize("step", JOURNEY_STEPS)
def test_any_step_not_passed_is_not_certified(step: str, status: str) -> None:
    result = verdict("core", [journey(**{step: status})], components())
    assert not result.certified
    assert result.reasons == [
        f"core journey 'digits': step '{step}' "
        + ("was skipped" if status == "skipped" else status)
        + f": {step} went {status} on purpose"
    ]


def test_a_missing_step_is_not_a_pass() -> None:
    record = journey()
    record.steps = [s for s in record.steps if s.name != "serve"]
    result = verdict("core", [record], components())
    assert not result.certified
    assert result.reasons == ["core journey 'digits': step 'serve' did not run"]


def test_no_journey_of_the_profile_ran() -> None:
    result = verdict("gpu", [journey("core")], components())
    assert not result.certified
    assert "no 'gpu' journey ran" in result.reasons[0]


def test_every_journey_of_the_profile_must_pass() -> None:
    good, bad = journey(scenario="digits"), journey(scenario="iris", tune="failed")
    result = verdict("core", [good, bad], components())
    assert not result.certified
    assert result.reasons == [
        "core journey 'iris': step 'tune' failed: tune went failed on purpose"]


def test_full_needs_core_gpu_and_healthy_components() -> None:
    both = [journey("core"), journey("gpu", scenario="digits-gpu")]
    assert verdict("full", both, components()).certified
    assert verdict("full", both, components("registry")).reasons == [
        "component 'registry' is unhealthy: exited 1"]
    assert verdict("full", both, []).reasons == ["no component reported its status"]
    skipped_gpu = [journey("core"), journey("gpu", train="skipped")]
    reasons = verdict("full", skipped_gpu, components()).reasons
    assert reasons == [
        "gpu journey 'digits': step 'train' was skipped: train went skipped on purpose"]


def test_components_do_not_decide_core() -> None:
    assert verdict("core", [journey()], components("store")).certified


@pytest.mark.parametrize("code", [2, 3, 4, 5])
def test_a_broken_suite_certifies_nothing(code: int) -> None:
    judged = verdicts(PROFILES["full"], [journey("core"), journey("gpu")], components(),
                      suite_exit_code=code)
    assert list(judged) == ["full", "core", "gpu"]
    assert not any(v.certified for v in judged.values())
    assert all(f"pytest exit {code}" in v.reasons[-1] for v in judged.values())


def test_a_failed_test_outside_the_steps_fails_only_the_run_profile() -> None:
    judged = verdicts(PROFILES["full"], [journey("core"), journey("gpu")], components(),
                      suite_exit_code=1)
    assert not judged["full"].certified
    assert "outside the journey steps" in judged["full"].reasons[0]
    assert judged["core"].certified and judged["gpu"].certified


def test_unknown_profile_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        get_profile("nightly")
    assert caught.value.exit_code == 2
    assert caught.value.line() == "unknown profile 'nightly'; use --profile quick|core|gpu|full"
