"""The verdict: requirements judged from recorded checks; only a run whose every MUST requirement
passed certifies, a skip is never a pass, and a SHOULD requirement only warns."""

from __future__ import annotations

import pytest

from kfbox.harness.profiles import PROFILES, get_profile
from kfbox.harness.records import CheckRecord, RunRecord
from kfbox.harness.requirements import (
    COMPONENTS,
    NOTEBOOK_WORK,
    REQUIREMENTS,
    STEPS,
    steps_for,
)
from kfbox.harness.verdict import judge_profile
from kfbox.host.errors import UsageError
from tests.support.records import component_checks, journey, sandbox


def run(*journeys, checks=None) -> RunRecord:
    return RunRecord("digits", list(journeys), component_checks() if checks is None else checks,
                     sandbox())


def verdict(profile: str, record: RunRecord | None, exit_code: int | None = 0):
    results, verdicts = judge_profile(PROFILES[profile], record, exit_code)
    return results, verdicts[profile]


def test_profiles_name_their_variants_markers_and_requirements() -> None:
    assert {n: p.pytest_markers for n, p in PROFILES.items()} == {
        "quick": "quick", "core": "core or notebook_work", "gpu": "gpu",
        "full": "core or gpu or components or notebook_work", "notebook": "notebook_work"}
    assert [n for n, p in PROFILES.items() if p.needs_gpu] == ["gpu", "full"]
    core = [(r.id, where) for r, where in PROFILES["core"].requirements()]
    assert ("train.process-group", "core") in core
    assert not any(r == "gpu.workloads" or w == COMPONENTS for r, w in core)
    # The journey pipeline is core's step: quick keeps its journey short, gpu has none
    # (kfp.local gives a task no GPU).
    assert ("pipeline.runs", "core") in core
    assert steps_for("core")[-1] == "pipeline"
    assert "pipeline" not in steps_for("quick") + steps_for("gpu")
    assert not any(r.id.startswith("pipeline.")
                   for profile in ("quick", "gpu")
                   for r, _ in PROFILES[profile].requirements())
    full = {(r.id, where) for r, where in PROFILES["full"].requirements()}
    assert ("gpu.workloads", "gpu") in full and ("platform.healthy", COMPONENTS) in full
    assert {(r.id, w) for r, w in PROFILES["core"].requirements()} < full
    # A person's work from the notebook: its own profile, and part of core (so of full); the
    # journey-only profiles and `kfbox test` leave it out.
    notebook = {(r.id, w) for r, w in PROFILES["notebook"].requirements()}
    assert notebook == {(f"person.{p}", NOTEBOOK_WORK)
                        for p in ("boundary", "trains", "tunes", "builds", "serves",
                                  "pipelines")}
    assert notebook < {(r.id, w) for r, w in PROFILES["core"].requirements()}
    assert not notebook & {(r.id, w) for r, w in PROFILES["quick"].requirements()}
    assert PROFILES["core"].journey().pytest_markers == "core"


def test_every_requirement_has_a_home_and_a_level() -> None:
    for requirement in REQUIREMENTS.values():
        assert requirement.where in (*STEPS, COMPONENTS, NOTEBOOK_WORK)
        assert requirement.level in ("MUST", "SHOULD")
        assert requirement.text.endswith(".")


@pytest.mark.parametrize("profile", ["quick", "core", "gpu"])
def test_a_journey_with_every_check_passed_certifies(profile: str) -> None:
    results, result = verdict(profile, run(journey(profile)))
    assert result.certified and result.reasons == [] and result.warnings == []
    assert {r.status for r in results} == {"passed"}
    assert all(r.evidence and r.evidence[0].test_id for r in results)


@pytest.mark.parametrize("status", ["failed", "skipped", "blocked", "interrupted"])
@pytest.mark.parametrize("step", STEPS)
def test_a_step_that_did_not_pass_fails_its_requirements(step: str, status: str) -> None:
    results, result = verdict("core", run(journey(**{step: status})))
    assert not result.certified
    expected = "blocked" if status == "failed" else status
    mine = [r for r in results if REQUIREMENTS[r.id].where == step]
    assert mine and all(r.status == expected for r in mine)
    first = mine[0]
    assert result.reasons[0] == (
        f"{first.id} [core] {expected}: step '{step}' {status} before checking it: "
        f"{step} went {status} on purpose")


def test_a_failed_check_is_the_reason() -> None:
    record = journey()
    train = record.step("train")
    assert train is not None
    train.checks[0] = CheckRecord("train.process-group", False, "world_size=1 for 2 node(s)", "t")
    _, result = verdict("core", run(record))
    assert result.reasons == ["train.process-group [core] failed: world_size=1 for 2 node(s)"]


def test_a_passed_step_that_never_checked_a_requirement_is_not_a_pass() -> None:
    record = journey()
    tune = record.step("tune")
    assert tune is not None
    tune.checks = [c for c in tune.checks if c.requirement != "tune.best"]
    _, result = verdict("core", run(record))
    assert result.reasons == ["tune.best [core] not-run: step 'tune' passed before checking it"]


def test_a_failed_should_requirement_warns_and_still_certifies() -> None:
    record = journey()
    serve = record.step("serve")
    assert serve is not None
    for check in serve.checks:
        if check.requirement == "serve.metadata":
            check.passed, check.detail = False, "the model declares no inputs or outputs"
    _, result = verdict("core", run(record))
    assert result.certified
    assert result.warnings == [
        "serve.metadata [core] failed: the model declares no inputs or outputs"]


def test_no_journey_of_the_variant_ran() -> None:
    _, result = verdict("gpu", run(journey("core")))
    assert not result.certified
    assert result.reasons[0] == "notebook.executes [gpu] not-run: no gpu journey ran"


def test_nothing_recorded_certifies_nothing() -> None:
    results, result = verdict("core", None, exit_code=None)
    assert not result.certified and {r.status for r in results} == {"not-run"}


def test_full_needs_core_gpu_and_every_platform_requirement() -> None:
    both = [journey("core"), journey("gpu")]
    assert verdict("full", run(*both))[1].certified
    _, result = verdict("full", run(*both, checks=component_checks("platform.healthy")))
    assert result.reasons == ["platform.healthy [components] failed: platform.healthy failed"]
    _, result = verdict("full", run(*both, checks=[]))
    assert "platform.healthy [components] not-run: no test checked it" in result.reasons
    skipped_gpu = [journey("core"), journey("gpu", train="skipped")]
    reasons = verdict("full", run(*skipped_gpu))[1].reasons
    assert reasons[0].startswith("train.process-group [gpu] skipped: step 'train' skipped")


def test_platform_requirements_do_not_decide_core() -> None:
    assert verdict("core", run(journey(), checks=component_checks("platform.healthy")))[1].certified


@pytest.mark.parametrize("code", [2, 3, 4, 5])
def test_a_broken_suite_certifies_nothing(code: int) -> None:
    _, judged = judge_profile(PROFILES["full"], run(journey("core"), journey("gpu")), code)
    assert list(judged) == ["full", "core", "gpu"]
    assert not any(v.certified for v in judged.values())
    assert all(f"pytest exit {code}" in v.reasons[-1] for v in judged.values())


def test_a_failed_test_outside_the_checks_fails_only_the_run_profile() -> None:
    _, judged = judge_profile(PROFILES["full"], run(journey("core"), journey("gpu")), 1)
    assert not judged["full"].certified
    assert "outside the requirements' checks" in judged["full"].reasons[0]
    assert judged["core"].certified and judged["gpu"].certified


def test_unknown_profile_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        get_profile("nightly")
    assert caught.value.exit_code == 2
    assert caught.value.line() == ("unknown profile 'nightly'; use --profile "
                                   "quick|core|gpu|full|notebook")


def test_the_notebook_profile_is_judged_from_its_own_checks_and_shown_by_requirement() -> None:
    from rich.console import Console

    from kfbox.harness.certificate.console import summary
    from tests.support.records import make_certificate

    checks = [CheckRecord(r.id, r.id != "person.serves", f"{r.id} seen", f"t::{r.id}")
              for r in REQUIREMENTS.values() if r.where == NOTEBOOK_WORK]
    certificate = make_certificate("notebook", journeys=[], checks=checks)
    assert not certificate.certified
    assert [r.id for r in certificate.requirements] == [
        "person.boundary", "person.trains", "person.tunes", "person.builds", "person.serves",
        "person.pipelines"]
    console = Console(width=200, record=True)
    console.print(summary(certificate))
    text = console.export_text()
    assert "no journey ran" not in text
    assert "person.trains" in text and "person.serves seen" in text
    assert "profile notebook: NOT CERTIFIED" in text
