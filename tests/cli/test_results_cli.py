"""`kfbox certify` and `kfbox results` end to end through the CLI, with the journey runner
replaced by one that returns constructed records and the sandbox check by one that says it runs
(both have their own tests: the plugin in tests/harness, the real run in tests/e2e)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from kfbox.cli import certify as certify_cli
from kfbox.cli import main
from kfbox.harness import runner as runner_module
from kfbox.harness.profiles import Profile
from kfbox.harness.records import JourneyRecord, RunRecord
from kfbox.harness.runner import SuiteOutcome
from kfbox.host.config import SandboxSpec
from kfbox.host.errors import PreflightError
from tests.support.records import SECRET, component_checks, journey, sandbox


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., list]:
    """Install a runner whose run_suite calls `behave(profile, out_dir, spec)`, and a sandbox
    that runs; returns the list of calls the runner saw."""
    monkeypatch.chdir(tmp_path)  # no kfbox.yaml from the developer's cwd
    # Where certify calls it (it imported the name): patching the defining module alone
    # would miss it whenever another test imported certify first.
    monkeypatch.setattr(certify_cli, "require_running", lambda spec: None)

    def install(behave: Callable[[Profile, Path, SandboxSpec], SuiteOutcome]) -> list:
        calls: list = []

        def run_suite(profile: Profile, out_dir: Path, spec: SandboxSpec, *,
                      scenario: str) -> SuiteOutcome:
            calls.append((profile.name, out_dir, spec, scenario))
            return behave(profile, out_dir, spec)

        monkeypatch.setattr(runner_module, "run_suite", run_suite)
        return calls

    return install


def outcome_of(*records: JourneyRecord, exit_code: int = 0) -> Callable[..., SuiteOutcome]:
    def behave(profile: Profile, out_dir: Path, spec: SandboxSpec) -> SuiteOutcome:
        logs = out_dir / "logs"  # the runner writes into the bundle folder, as agreed
        logs.mkdir(parents=True, exist_ok=True)
        (logs / "jupyter.log").write_text(f"http://127.0.0.1:8888/?token={SECRET}\n")
        junit = out_dir / "junit.xml"
        failures = sum(s.status == "failed" for r in records for s in r.steps)
        junit.write_text(f'<testsuites><testsuite name="pytest" tests="5" failures="{failures}"'
                         ' errors="0" skipped="0"/></testsuites>')
        record = RunRecord("digits", list(records), component_checks(), sandbox())
        return SuiteOutcome(record, junit, logs, exit_code, runner_module.junit_counts(junit))

    return behave


def kfbox(*argv: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
        raise SystemExit(0)  # main returns normally on success
    return done.value.code or 0


def only_bundle(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    assert (out / f"{folder.name}.tar.gz").is_file()
    return folder


def test_certified_run_exits_0_with_bundle_and_summary(runner, tmp_path, capsys) -> None:
    calls = runner(outcome_of(journey("core")))
    assert kfbox("certify", "--profile", "core", "--out", str(tmp_path / "out")) == 0
    folder = only_bundle(tmp_path / "out")
    assert calls[0][:2] == ("core", folder) and calls[0][3] == "digits"
    report = json.loads((folder / "report.json").read_text())
    assert report["certified"] is True and report["suite"]["tests"] == 5
    printed = capsys.readouterr().out
    assert "profile core: CERTIFIED" in printed and "written in" in printed
    assert SECRET not in (folder / "logs" / "jupyter.log").read_text()


def test_failed_step_exits_1_and_still_writes_the_bundle(runner, tmp_path, capsys) -> None:
    runner(outcome_of(journey("core", tune="failed", serve="blocked"), exit_code=1))
    assert kfbox("certify", "--out", str(tmp_path / "out")) == 1
    report = json.loads((only_bundle(tmp_path / "out") / "report.json").read_text())
    assert report["certified"] is False
    assert report["verdicts"]["core"]["reasons"][0].startswith("tune.every-trial [core] blocked")
    captured = capsys.readouterr()
    assert "NOT CERTIFIED" in captured.out
    assert captured.err.strip() == "error: profile 'core' is not certified: see the reasons above"


def test_skipped_gpu_step_is_not_certified(runner, tmp_path) -> None:
    runner(outcome_of(journey("gpu", train="skipped", tune="skipped", serve="skipped")))
    assert kfbox("certify", "--profile", "gpu", "--out", str(tmp_path / "out")) == 1
    report = json.loads((only_bundle(tmp_path / "out") / "report.json").read_text())
    assert "step 'train' skipped" in report["verdicts"]["gpu"]["reasons"][0]


def test_runner_error_keeps_its_exit_code_and_becomes_the_reason(runner, tmp_path, capsys) -> None:
    def refuse(*_: object) -> SuiteOutcome:
        raise PreflightError("sandbox 'kfbox' is not running", fix="run `kfbox up`")

    runner(refuse)
    assert kfbox("certify", "--out", str(tmp_path / "out")) == 3
    folder = only_bundle(tmp_path / "out")
    report = json.loads((folder / "report.json").read_text())
    assert report["suite"]["exit_code"] is None
    assert report["verdicts"]["core"]["reasons"][0] == (
        "sandbox 'kfbox' is not running — run `kfbox up`")
    assert capsys.readouterr().err.count("\n") == 1


def test_runner_crash_is_reported_with_its_traceback(runner, tmp_path) -> None:
    def crash(*_: object) -> SuiteOutcome:
        raise RuntimeError("kernel died")

    runner(crash)
    assert kfbox("certify", "--out", str(tmp_path / "out")) == 1
    folder = only_bundle(tmp_path / "out")
    assert "RuntimeError: kernel died" in (folder / "logs" / "certify-error.txt").read_text()


def test_kubeconfig_certifies_an_existing_cluster(runner, tmp_path) -> None:
    calls = runner(outcome_of(journey("core")))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    assert kfbox("certify", "--kubeconfig", str(kubeconfig), "--out", str(tmp_path / "o")) == 0
    spec = calls[0][2]
    assert (spec.engine, spec.kubernetes.kubeconfig) == ("existing", kubeconfig)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["certify", "--profile", "nightly"],
         "error: unknown profile 'nightly'; use --profile quick|core|gpu|full|notebook"),
        (["certify", "--out", "{file}/sub"], "error: --out '{file}/sub' is not writable"),
        (["certify", "--kubeconfig", "{tmp}/none"],
         "error: --kubeconfig '{tmp}/none' is not a file"),
        (["results", "{tmp}/none"], "error: no results bundle at '{tmp}/none'"),
        (["results", "{file}"], "error: {file}: corrupt or truncated results bundle archive"),
        (["results", "{file}", "--mode", "json"],
         "error: unknown --mode 'json'; use --mode summary|detailed"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(runner, tmp_path, capsys, argv, expected) -> None:
    calls = runner(outcome_of(journey("core")))
    afile = tmp_path / "afile"
    afile.write_text("not a bundle")
    fill = {"file": str(afile), "tmp": str(tmp_path)}
    assert kfbox(*(a.format(**fill) for a in argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected.format(**fill)) and err.count("\n") == 1
    assert calls == []  # nothing ran


def test_results_reads_folder_and_tarball(runner, tmp_path, capsys) -> None:
    runner(outcome_of(journey("core", serve="failed"), exit_code=1))
    kfbox("certify", "--out", str(tmp_path / "out"))
    folder = only_bundle(tmp_path / "out")
    capsys.readouterr()
    assert kfbox("results", str(folder)) == 0
    summary = capsys.readouterr().out
    assert "profile core: NOT CERTIFIED" in summary and "digits" in summary
    assert kfbox("results", f"{folder}.tar.gz", "--mode", "detailed") == 0
    detailed = capsys.readouterr().out
    for text in ("notebook", "build", "train", "tune", "serve", "accuracy=0.95",
                 "serve went failed on purpose", "registry", "torch", "2.13.0",
                 "train.process-group", "NOT CERTIFIED"):
        assert text in detailed


def test_results_refuses_a_newer_schema(runner, tmp_path, capsys) -> None:
    runner(outcome_of(journey("core")))
    kfbox("certify", "--out", str(tmp_path / "out"))
    folder = only_bundle(tmp_path / "out")
    document = json.loads((folder / "report.json").read_text())
    (folder / "report.json").write_text(json.dumps({**document, "schema_version": 99}))
    capsys.readouterr()
    assert kfbox("results", str(folder)) == 2
    assert "report schema version 99 is newer" in capsys.readouterr().err


def test_runs_within_one_second_get_their_own_bundles(runner, tmp_path) -> None:
    runner(outcome_of(journey("core")))
    for _ in range(3):
        assert kfbox("certify", "--out", str(tmp_path / "out")) == 0
    folders = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir())
    tarballs = sorted(p.name for p in (tmp_path / "out").glob("*.tar.gz"))
    assert len(folders) == len(set(folders)) == len(tarballs) == 3


def test_reproduce_refuses_results_without_a_lineage_before_any_sandbox(
    runner, tmp_path, capsys, monkeypatch
) -> None:
    runner(outcome_of(journey("core")))  # a certificate whose serve step kept no lineage
    kfbox("certify", "--out", str(tmp_path / "out"))
    folder = only_bundle(tmp_path / "out")
    capsys.readouterr()
    monkeypatch.setattr("kfbox.cli.journey.require_running", lambda spec: pytest.fail(
        "the sandbox was asked for before the results were checked"))
    assert kfbox("reproduce", str(folder)) == 2
    assert capsys.readouterr().err == (
        f"error: {str(folder)!r} names no served model's lineage — give the results of a "
        "`kfbox certify` whose serve step passed on a sandbox with a tracking server\n")
