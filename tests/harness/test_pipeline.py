"""The journey pipeline without an engine: what the compiled file holds (KFP's own compiler),
the trials it draws, and each task's function run here as a task runs it in the image (the same
bodies KFP ships). The pipeline runs for real on a sandbox in tests/e2e."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from kfbox.engines.metrics import PAIR, parse_metrics
from kfbox.engines.platform import MODEL_DIR_ENV, Parameter
from kfbox.harness import pipeline_tasks
from kfbox.harness.pipeline import check_runs_locally, compile_journey, draw_trials
from kfbox.host.errors import UsageError
from kfbox.scenarios.scenario import Condition, list_scenarios, load_scenario
from tests.support.cli import kfbox_cli
from tests.support.pipelines import OWN_PIPELINE, own_pipeline

IMAGE = "127.0.0.1:5000/kfbox/digits@sha256:" + "a" * 64


@pytest.mark.parametrize("name", list_scenarios())
def test_each_shipped_scenario_compiles_to_one_pipeline_on_its_image(
    name: str, tmp_path: Path
) -> None:
    scenario = load_scenario(name).for_variant("core")
    compiled = compile_journey(scenario, IMAGE, tmp_path / "pipeline.yaml")
    spec = yaml.safe_load(compiled.path.read_text())
    assert set(spec["root"]["dag"]["tasks"]) == {"train", "for-loop-1", "best", "gate"}
    loop = spec["root"]["dag"]["tasks"]["for-loop-1"]
    assert loop["iteratorPolicy"]["parallelismLimit"] == scenario.tune.parallel_trials
    executors = spec["deploymentSpec"]["executors"].values()
    assert {e["container"]["image"] for e in executors} == {IMAGE}
    # kfp is in the image: no task installs anything when it starts (so none needs an index).
    assert not any("pip install" in " ".join(e["container"]["command"]) for e in executors)
    defaults = {k: v.get("defaultValue")
                for k, v in spec["root"]["inputDefinitions"]["parameters"].items()}
    assert defaults["trials"] == compiled.trials
    assert len(compiled.trials) == scenario.tune.max_trials
    assert defaults["goal"] == scenario.tune.goal
    assert defaults["model_dir_env"] == MODEL_DIR_ENV
    assert defaults["metric_format"] == PAIR.pattern
    # One file, one digest: compiling again gives the same bytes.
    again = compile_journey(scenario, IMAGE, tmp_path / "again.yaml")
    assert again.sha256 == compiled.sha256


def test_trials_are_drawn_within_each_range_the_same_every_time() -> None:
    parameters = [Parameter("lr", "double", 0.001, 0.1, log=True),
                  Parameter("hidden", "int", 8, 64),
                  Parameter("momentum", "double", 0.5, 0.9),
                  Parameter("optimizer", "categorical", values=["adam", "sgd"])]
    trials = draw_trials(parameters, 40, {"epochs": "10", "lr": "0.01"})
    assert trials == draw_trials(parameters, 40, {"epochs": "10", "lr": "0.01"})
    assert len(trials) == 40 and all(t["epochs"] == "10" for t in trials)
    assert all(0.001 <= float(t["lr"]) <= 0.1 for t in trials)
    assert all(8 <= int(t["hidden"]) <= 64 for t in trials)
    assert all(0.5 <= float(t["momentum"]) <= 0.9 for t in trials)
    assert {t["optimizer"] for t in trials} == {"adam", "sgd"}
    # On a log scale about half the draws fall below the range's geometric middle (0.01).
    below = sum(float(t["lr"]) < math.sqrt(0.001 * 0.1) for t in trials)
    assert 10 <= below <= 30


def test_the_train_task_reads_metrics_as_the_harness_does_and_saves_where_it_is_told(
    tmp_path: Path,
) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import os, pathlib, sys\n"
        "print('epoch=1 loss=0.5 accuracy=0.9')\n"
        "print('epoch=2 loss=0.25 accuracy=0.95 note=v1.2')\n"
        "print('args', sys.argv[1:])\n"
        f"pathlib.Path(os.environ['{MODEL_DIR_ENV}'], 'model.pt').write_text('m')\n")
    model = SimpleNamespace(path=str(tmp_path / "model"))
    logged: dict[str, float] = {}
    metrics = SimpleNamespace(log_metric=logged.__setitem__)
    found = pipeline_tasks.train([sys.executable, str(script)], {"lr": "0.1"}, MODEL_DIR_ENV,
                                 PAIR.pattern, model, metrics)
    printed = "epoch=1 loss=0.5 accuracy=0.9\nepoch=2 loss=0.25 accuracy=0.95 note=v1.2\n"
    assert found == parse_metrics(printed) == logged
    assert (tmp_path / "model" / "model.pt").read_text() == "m"


def test_a_training_run_that_fails_fails_its_task(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited with status 3"):
        pipeline_tasks.train([sys.executable, "-c", "raise SystemExit(3)"], {}, MODEL_DIR_ENV,
                             PAIR.pattern, SimpleNamespace(path=str(tmp_path / "m")),
                             SimpleNamespace(log_metric=lambda *_: None))


@pytest.mark.parametrize(("goal", "picked"), [("maximize", 1), ("minimize", 2)])
def test_the_best_trial_is_the_best_in_the_goals_direction(
    goal: str, picked: int, tmp_path: Path
) -> None:
    models = []
    for index in range(3):
        folder = tmp_path / f"trial-{index}"
        folder.mkdir()
        (folder / "model.pt").write_text(str(index))
        models.append(SimpleNamespace(path=str(folder)))
    results = [{"rmse": 0.5}, {"rmse": 0.9}, {"rmse": 0.1}]
    chosen = pipeline_tasks.best(results, models, [{"lr": str(i)} for i in range(3)], "rmse", goal,
                                 SimpleNamespace(path=str(tmp_path / "best")))
    assert chosen == {"metrics": results[picked], "args": {"lr": str(picked)}, "trial": picked}
    assert (tmp_path / "best" / "model.pt").read_text() == str(picked)
    with pytest.raises(RuntimeError, match="no trial reported accuracy"):
        pipeline_tasks.best(results, models, [{}] * 3, "accuracy", goal,
                            SimpleNamespace(path=str(tmp_path / "none")))


@pytest.mark.parametrize("condition", [Condition(metric="accuracy", at_least=0.9),
                                       Condition(metric="rmse", at_most=60)])
@pytest.mark.parametrize("value", [0.5, 0.9, 0.95, 59.9, 60, 61])
def test_the_quality_gate_holds_where_the_scenarios_condition_holds(
    condition: Condition, value: float
) -> None:
    picked = {"metrics": {condition.metric: value}}
    check = condition.model_dump(exclude_none=True)
    if condition.holds(value):
        assert pipeline_tasks.gate(picked, [check]).startswith("passed: ")
    else:
        with pytest.raises(RuntimeError, match=f"quality gate: {condition.metric}={value}"):
            pipeline_tasks.gate(picked, [check])


def test_a_metric_never_reported_fails_the_gate() -> None:
    with pytest.raises(RuntimeError, match="quality gate: r2=None"):
        pipeline_tasks.gate({"metrics": {}}, [{"metric": "r2", "at_least": 0.2}])


def test_a_scenario_brings_its_own_pipeline_on_the_image_it_is_given(tmp_path: Path) -> None:
    scenario = load_scenario(own_pipeline(tmp_path))
    compiled = compile_journey(scenario, IMAGE, tmp_path / "pipeline.yaml")
    spec = yaml.safe_load(compiled.path.read_text())
    assert list(spec["root"]["dag"]["tasks"]) == ["train"]
    assert spec["deploymentSpec"]["executors"]["exec-train"]["container"]["image"] == IMAGE


@pytest.mark.parametrize(("image", "settings", "says"), [
    ('"python:3.12"', "", "task train runs image 'python:3.12', not the sandbox's — give every "
                          "component the image journey_pipeline(image) is called with"),
    ("image", "trained.set_cpu_limit('2')", "task train sets cpuLimit, resourceCpuLimit: "
                                            "resource requests, limits or GPUs (kfp.local runs "
                                            "none) — remove them for lite"),
    ("image", "trained.set_accelerator_type('nvidia.com/gpu').set_accelerator_limit(1)",
     "task train sets accelerator: resource requests, limits or GPUs"),
    ("image", "trained.set_display_name(3)", "does not compile: "),
], ids=["another-image", "cpu-limit", "gpu", "does-not-compile"])
def test_a_scenario_pipeline_kfp_local_cannot_run_is_one_line_before_anything_runs(
    tmp_path: Path, image: str, settings: str, says: str
) -> None:
    folder = own_pipeline(tmp_path, image, settings)
    done = kfbox_cli("test", "--profile", "core", "--scenario", str(folder),
                     env={"KFBOX_HOME": str(tmp_path / "home")})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: scenario own: pipeline.py")
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "home" / "sandboxes").exists()  # nothing was made


@pytest.mark.parametrize(("text", "says"), [
    ("x = 1\n", "pipeline.py defines no journey_pipeline(image)"),
    (OWN_PIPELINE.replace("SETTINGS", "pass").replace("IMAGE_OF_TRAIN", "image").replace(
        "return Outputs(model=trained.outputs[\"model\"], picked=trained.outputs[\"Output\"])",
        "return Outputs(model=trained.outputs[\"model\"], picked={})"),
     "does not compile: "),
], ids=["no-function", "no-picked-output"])
def test_a_scenario_pipeline_without_what_the_step_reads_is_refused(
    tmp_path: Path, text: str, says: str
) -> None:
    scenario = load_scenario(own_pipeline(tmp_path, text=text))
    with pytest.raises(UsageError, match=re.escape(says)):
        compile_journey(scenario, IMAGE, tmp_path / "pipeline.yaml")


def test_kubernetes_only_settings_and_missing_outputs_are_named() -> None:
    spec = {"deploymentSpec": {"executors": {}},
            "root": {"outputDefinitions": {"artifacts": {"model": {}}, "parameters": {}}}}
    with pytest.raises(UsageError, match="uses Kubernetes-only settings"):
        check_runs_locally([spec, {"platforms": {"kubernetes": {}}}], IMAGE, "p")
    with pytest.raises(UsageError, match="p returns no 'picked'"):
        check_runs_locally([spec], IMAGE, "p")
