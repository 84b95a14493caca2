"""The kfbox pytest plugin tested as a plugin (pytester): step records and their checks, blocking
after a failure, an absent sandbox failing every test, the GPU journey's skip, component checks,
an interrupted run, and the run record written at the session's end. Then how it is loaded: only
with `-p` (an ordinary suite of the environment sees none of it), its recorder only in a session
that asks for a record, and the runner's own invocation with pytest's plugin autoload off.

The engine is a stand-in installed by the test's conftest (get_engine patched): the plugin's own
behaviour is under test, not an engine's, and the steps are stand-ins that record checks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from kfbox.harness import plugin, runner
from kfbox.harness.profiles import PROFILES
from kfbox.harness.requirements import STEPS, steps_for
from kfbox.host.config import SandboxSpec

pytest_plugins = ["pytester"]

PLUGIN = plugin.__name__
STAND_INS = '''
import pytest

import kfbox.harness.journey as journey_module
import kfbox.engines as engines
from kfbox.engines.base import Access, Capabilities, ComponentStatus, SandboxStatus

STATE = {{"state": {state!r}, "gpus": {gpus}, "fail": {fail!r}, "interrupt": {interrupt!r},
         "unreachable_at_end": {unreachable_at_end!r}, "breaks": {breaks!r}, "looks": 0}}


class Platform:
    runtime_image = "runtime"

    def gpu_count(self):
        return STATE["gpus"]

    def collect_diagnostics(self, dest):
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "component.log").write_text("component log")

    def close(self, *, keep=False):
        pass


class Engine:
    def __init__(self, spec):
        self.spec = spec

    def status(self):
        from kfbox.host.errors import PreflightError

        STATE["looks"] += 1
        if STATE["unreachable_at_end"] and STATE["looks"] > 1:
            raise PreflightError("no Docker engine answers")
        down = STATE["breaks"] and STATE["looks"] > 1
        comps = [ComponentStatus("jupyter", not down, "exited" if down else "running",
                                 "http://127.0.0.1:1", "img")]
        return SandboxStatus(self.spec.name, "lite", STATE["state"],
                             comps if STATE["state"] != "absent" else [])

    def capabilities(self):
        return Capabilities(notebook=Access("http://127.0.0.1:1", "token"), gpus=STATE["gpus"],
                            software={{"torch": "2.13.0"}})

    def platform(self, run_dir):
        return Platform()


def stand_in(step):
    def body(journey):
        if STATE["interrupt"] == step:
            raise KeyboardInterrupt
        journey.check(f"{{step}}.stand-in", STATE["fail"] != step, f"{{step}} checked")
        return {{"seconds": 1.5}}
    return body


def pytest_configure(config):
    engines.get_engine = Engine
    for step in journey_module.STEP_FUNCTIONS:
        journey_module.STEP_FUNCTIONS[step] = stand_in(step)
    from kfbox.harness import requirements
    for step in journey_module.STEP_FUNCTIONS:
        requirements.REQUIREMENTS[f"{{step}}.stand-in"] = requirements.Requirement(
            f"{{step}}.stand-in", "MUST", step, "A stand-in.")
    requirements.REQUIREMENTS["platform.stand-in-should"] = requirements.Requirement(
        "platform.stand-in-should", "SHOULD", "components", "A stand-in.")
'''

JOURNEY_TESTS = '''
import pytest

from kfbox.harness.requirements import STEPS


@pytest.mark.parametrize("step", STEPS)
def test_step(kfbox_journey, step):
    kfbox_journey.run(step)
'''

COMPONENT_TESTS = '''
import pytest

pytestmark = pytest.mark.components


@pytest.mark.requirement("platform.healthy")
def test_healthy(kfbox_engine, kfbox_check):
    kfbox_check(True, "all healthy")


@pytest.mark.requirement("platform.stand-in-should")
def test_should(kfbox_engine, kfbox_check):
    kfbox_check(False, "recommended, not met")


def test_unmarked(kfbox_check):
    pass
'''


def stand_ins(*, state: str = "running", gpus: int = 0, fail: str = "", interrupt: str = "",
              unreachable_at_end: bool = False, breaks: bool = False) -> str:
    """The stand-in engine and steps, as the source of a conftest or a plugin module."""
    return STAND_INS.format(state=state, gpus=gpus, fail=fail, interrupt=interrupt,
                            unreachable_at_end=unreachable_at_end, breaks=breaks)


def setup(pytester: pytest.Pytester, **state: Any) -> None:
    # The suite's own parametrization of kfbox_journey, as kfbox/harness/cuj has it.
    parametrize = "from kfbox.harness.cuj.conftest import pytest_generate_tests  # noqa: F401\n"
    pytester.makeconftest(parametrize + stand_ins(**state))
    pytester.makepyfile(test_journey=JOURNEY_TESTS)


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    """The journey's pytest process as `kfbox test` starts it (kfbox.harness.pytest_main)."""
    record = pytester.path / "record.json"
    result = pytester.run(
        sys.executable, "-m", "kfbox.harness.pytest_main", f"--basetemp={pytester.path / 'tmp'}",
        "-p", "no:cacheprovider", "-p", "no:kmock", "-p", PLUGIN,
        f"--kfbox-out={pytester.path / 'out'}", f"--kfbox-record={record}", *args,
    )
    return result, json.loads(record.read_text()) if record.is_file() else {}


def statuses(record: dict, variant: str = "core") -> dict[str, str]:
    [journey] = [j for j in record["journeys"] if j["variant"] == variant]
    return {s["name"]: s["status"] for s in journey["steps"]}


def test_every_step_is_recorded_with_its_checks_and_test_id(pytester: pytest.Pytester) -> None:
    setup(pytester)
    result, record = run(pytester, "-m", "core")
    assert result.ret == 0
    assert statuses(record) == dict.fromkeys(STEPS, "passed")
    [journey] = record["journeys"]
    train = journey["steps"][2]
    assert train["test_id"] == "test_journey.py::test_step[core-train]"
    assert train["checks"] == [{"requirement": "train.stand-in", "passed": True,
                                "detail": "train checked", "test_id": train["test_id"]}]
    assert train["metrics"] == {"seconds": 1.5}
    assert (journey["scenario"], journey["objective"], journey["goal"]) == (
        "digits", "accuracy", "maximize")
    assert record["sandbox"]["state"] == "running"
    assert record["sandbox"]["capabilities"]["software"] == {"torch": "2.13.0"}
    result.stdout.fnmatch_lines(["*train*passed*seconds=1.5*"])


def test_a_failed_step_blocks_the_rest_and_keeps_diagnostics(pytester: pytest.Pytester) -> None:
    setup(pytester, fail="train")
    result, record = run(pytester, "-m", "core")
    assert result.ret == 1
    assert statuses(record) == {"notebook": "passed", "build": "passed", "train": "failed",
                                "tune": "blocked", "track": "blocked", "serve": "blocked",
                                "pipeline": "blocked"}
    [journey] = record["journeys"]
    assert journey["steps"][2]["reason"] == "train checked"
    assert journey["steps"][3]["reason"] == "blocked by step 'train'"
    logs = pytester.path / "out" / "logs"
    assert (logs / "core-train.inputs.json").is_file()
    assert (logs / "containers" / "component.log").is_file()


@pytest.mark.parametrize("state", ["absent", "degraded"])
def test_a_sandbox_not_running_fails_every_test_in_one_line(
    pytester: pytest.Pytester, state: str
) -> None:
    setup(pytester, state=state)
    result, record = run(pytester, "-m", "core")
    assert result.ret == 1
    assert set(statuses(record).values()) == {"failed"}
    reason = record["journeys"][0]["steps"][0]["reason"]
    assert reason.startswith("sandbox 'kfbox' is ") and "kfbox up" in reason
    assert record["sandbox"]["state"] == state


def test_the_gpu_journey_skips_without_a_gpu_and_fails_when_required(
    pytester: pytest.Pytester,
) -> None:
    setup(pytester)
    result, record = run(pytester, "-m", "gpu")
    assert result.ret == 0  # pytest's view; the verdict never counts a skip as a pass
    assert set(statuses(record, "gpu").values()) == {"skipped"}
    assert record["journeys"][0]["steps"][0]["reason"].startswith("no GPU")
    result, record = run(pytester, "-m", "gpu", "--kfbox-require-gpu")
    assert result.ret == 1
    assert set(statuses(record, "gpu").values()) == {"failed"}


def test_component_checks_are_recorded_and_a_should_only_warns(pytester: pytest.Pytester) -> None:
    setup(pytester)
    pytester.makepyfile(test_components=COMPONENT_TESTS)
    result, record = run(pytester, "-m", "components", "test_components.py")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 2 and outcomes["errors"] == 1  # the unmarked test
    checks = {c["requirement"]: c for c in record["checks"]}
    assert checks["platform.healthy"]["passed"] is True
    assert checks["platform.stand-in-should"] == {
        "requirement": "platform.stand-in-should", "passed": False,
        "detail": "recommended, not met",
        "test_id": "test_components.py::test_should"}
    result.stdout.fnmatch_lines(["*kfbox_check needs @pytest.mark.requirement(ID)*"])


def test_an_interrupted_step_is_recorded_as_interrupted(pytester: pytest.Pytester) -> None:
    setup(pytester, interrupt="tune")
    result, record = run(pytester, "-m", "core")
    assert result.ret == 2
    assert statuses(record) == {"notebook": "passed", "build": "passed", "train": "passed",
                                "tune": "interrupted"}


def test_the_sandbox_is_looked_at_again_at_the_end_and_kept_if_gone(
    pytester: pytest.Pytester,
) -> None:
    setup(pytester, unreachable_at_end=True)
    result, record = run(pytester, "-m", "core")
    assert result.ret == 0
    sandbox = record["sandbox"]
    assert sandbox["state"] == "running" and sandbox["components"][0]["name"] == "jupyter"
    assert "no Docker engine answers" in sandbox["error"]
    assert statuses(record)["serve"] == "passed"  # the journey is never thrown away


def test_no_record_without_an_out_folder_or_record_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:kmock",
                                           "-p", PLUGIN)
    assert result.ret == 0
    assert not list(Path(pytester.path).rglob("run-record.json"))


def test_a_fixture_needing_the_recorder_says_what_to_give(pytester: pytest.Pytester) -> None:
    setup(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:kmock",
                                           "-p", PLUGIN, "-m", "core")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*give --kfbox-record=FILE or --kfbox-out=DIR*"])


def test_a_step_failing_with_a_component_down_names_it_and_the_fix(
    pytester: pytest.Pytester,
) -> None:
    """The notebook server died during the step: the reason says so, and to run `kfbox up`."""
    setup(pytester, fail="notebook", breaks=True)
    _, record = run(pytester, "-m", "core")
    notebook = record["journeys"][0]["steps"][0]
    assert notebook["reason"] == ("the sandbox's jupyter (exited) is down: run `kfbox up` to "
                                  "repair it (notebook checked)")
    assert statuses(record)["build"] == "blocked"


# ---- how the plugin is loaded ----------------------------------------------------------------

SEES = f'''
def test_sees(request):
    manager = request.config.pluginmanager
    print("plugin:", manager.has_plugin({PLUGIN!r}),
          "recorder:", manager.get_plugin({plugin.RECORDER!r}) is not None)
'''


def fixtures_of_kfbox(listing: pytest.RunResult) -> set[str]:
    """The kfbox_* fixtures `pytest --fixtures` lists."""
    return {word for word in listing.stdout.str().split() if word.startswith("kfbox_")}


def test_an_ordinary_suite_sees_nothing_of_kfbox_until_it_loads_the_plugin(
    pytester: pytest.Pytester,
) -> None:
    """kfbox is installed in this environment, yet a suite that does not ask for its plugin gets
    no option, fixture or recorder of it; `-p` brings the options and fixtures, and the recorder
    comes only with a record asked for."""
    pytester.makepyfile(test_plain=SEES)

    def pytest_(*args: str) -> pytest.RunResult:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:kmock", *args)
        assert result.ret == 0, result.stdout.str()
        return result

    assert "--kfbox" not in pytest_("--help").stdout.str()
    assert not fixtures_of_kfbox(pytest_("--fixtures"))
    pytest_("-s").stdout.fnmatch_lines(["*plugin: False recorder: False*"])

    assert "--kfbox-require-gpu" in pytest_("-p", PLUGIN, "--help").stdout.str()
    assert {"kfbox_journey", "kfbox_engine", "kfbox_check"} <= fixtures_of_kfbox(
        pytest_("-p", PLUGIN, "--fixtures"))
    pytest_("-p", PLUGIN, "-s").stdout.fnmatch_lines(["*plugin: True recorder: False*"])
    pytest_("-p", PLUGIN, "-s", f"--kfbox-record={pytester.path / 'record.json'}"
            ).stdout.fnmatch_lines(["*plugin: True recorder: True*"])
    assert (pytester.path / "record.json").is_file()


def test_the_recorder_is_unregistered_when_the_session_ends(pytester: pytest.Pytester) -> None:
    class Spy:
        """Looks at the plugin manager after every other plugin's configure and unconfigure."""

        def __init__(self) -> None:
            self.registered: list[bool] = []

        @pytest.hookimpl(trylast=True)
        def pytest_configure(self, config: pytest.Config) -> None:
            self.registered.append(config.pluginmanager.get_plugin(plugin.RECORDER) is not None)

        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(self, config: pytest.Config) -> None:
            self.registered.append(config.pluginmanager.get_plugin(plugin.RECORDER) is not None)

    spy = Spy()
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.inline_run("-p", "no:kmock", "-p", PLUGIN, f"--kfbox-out={pytester.path / 'out'}",
                        plugins=[spy])
    assert spy.registered == [True, False]
    assert (pytester.path / "out" / "workspace" / plugin.RECORD_FILE).is_file()


@pytest.mark.parametrize("require_gpu", [False, True])
def test_the_runner_loads_the_plugin_itself_with_autoload_off(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, require_gpu: bool
) -> None:
    """run_suite, as `kfbox certify` calls it, with PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 (common in
    CI): the real suite (kfbox/harness/cuj) against the stand-in engine, loaded as a plugin
    module; without a GPU the GPU journey skips, or fails when require_gpu says so."""
    pytester.makepyfile(kfbox_stand_ins=stand_ins())
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    command = runner.pytest_command
    monkeypatch.setattr(runner, "pytest_command", lambda *args, **kwargs: command(
        *args, **kwargs, extra=["-p", "kfbox_stand_ins"]))
    log = pytester.path / "pytest.log"
    with log.open("w") as output:
        outcome = runner.run_suite(PROFILES["gpu"], pytester.path / "out", SandboxSpec(),
                                   require_gpu=require_gpu, output=output)
    assert outcome.pytest_exit_code == (1 if require_gpu else 0), log.read_text()
    assert outcome.counts["tests"] == len(steps_for("gpu"))
    assert outcome.record is not None
    [journey] = outcome.record.journeys
    assert {step.status for step in journey.steps} == {"failed" if require_gpu else "skipped"}
