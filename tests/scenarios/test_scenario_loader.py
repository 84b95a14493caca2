"""The scenario loader: the shipped scenarios load, variants apply, first-format files still load,
and a broken folder says why in one line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kfbox.host.errors import UsageError
from kfbox.scenarios import scenario as scenario_module
from kfbox.scenarios.scenario import Scenario, list_scenarios, load_scenario


def copy_of(scenario: Scenario, parent: Path, name: str | None = None) -> Path:
    folder = parent / (name or scenario.name)
    shutil.copytree(scenario.root, folder)
    return folder


Change = Callable[[dict[str, Any]], object]


def edit_yaml(folder: Path, *changes: Change) -> None:
    """Apply each change, in order, to the folder's scenario.yaml."""
    file = folder / "scenario.yaml"
    data = yaml.safe_load(file.read_text())
    for change in changes:
        change(data)
    file.write_text(yaml.safe_dump(data))


def in_first_format(data: dict[str, Any]) -> None:
    """digits' scenario.yaml as the first format wrote it: `thresholds:`, every bar an 'at least'
    on its step's metric."""
    checks = {step: bars if isinstance(bars, dict) else bars[0]
              for step, bars in data.pop("checks").items()}
    data["thresholds"] = {
        key: checks[step]["at_least"] for key, (step, _) in scenario_module.FIRST_FORMAT.items()
    }


def load_error(folder: Path) -> str:
    with pytest.raises(UsageError) as caught:
        load_scenario(folder)
    line = caught.value.line()
    assert "\n" not in line
    return line


def test_digits_is_listed_and_loads(digits: Scenario) -> None:
    assert "digits" in list_scenarios()
    assert digits.root == scenario_module.SCENARIOS_DIR / "digits"
    assert digits.notebook_outputs == ["train.py"]
    assert digits.train.command == ["python", "/app/train.py"]
    assert digits.serve.model_name == "digits"
    assert (digits.serve.answers, digits.serve.tolerance) == ("labels", None)
    conditions = [c for step in scenario_module.CHECKED_STEPS for c in getattr(digits.checks, step)]
    assert all(c.goal == "maximize" and 0 < c.at_least <= 1 for c in conditions)


def test_diabetes_is_listed_and_minimizes_its_error(diabetes: Scenario) -> None:
    assert "diabetes" in list_scenarios()
    assert (diabetes.tune.objective, diabetes.tune.goal) == ("rmse", "minimize")
    assert diabetes.serve.answers == "numbers" and diabetes.serve.tolerance
    assert [str(c) for c in diabetes.checks.tune] == ["rmse <= 62", "r2 >= 0.25"]


def test_quick_variant_merges_its_overrides(scenario: Scenario) -> None:
    quick = scenario.for_variant("quick")
    assert quick.variant == "quick"
    assert quick.train.nodes == 1
    assert quick.tune.max_trials < scenario.tune.max_trials
    # Merged key by key: the overridden epochs change, lr and hidden stay.
    assert int(quick.train.args["epochs"]) < int(scenario.train.args["epochs"])
    assert quick.train.args["lr"] == scenario.train.args["lr"]
    core = scenario.for_variant("core")
    assert (core.train, core.tune, core.checks) == (scenario.train, scenario.tune, scenario.checks)
    assert quick.root == scenario.root


def test_training_code_is_the_notebooks_writefile_cell(scenario: Scenario) -> None:
    code = scenario.training_code()
    assert "init_process_group" in code and "%%writefile" not in code
    compile(code, "train.py", "exec")


def test_a_first_format_file_loads_into_the_same_checks(digits: Scenario, tmp_path: Path) -> None:
    folder = copy_of(digits, tmp_path)
    edit_yaml(folder, in_first_format)
    # The first format had one bar a step: the notebook's prototype bar came later.
    loaded = load_scenario(folder).checks
    for step in scenario_module.CHECKED_STEPS:
        assert getattr(loaded, step) == getattr(digits.checks, step)[:1], step


REWRITE = " — rewrite 'thresholds:' as 'checks:' (docs/scenarios.md)"
ONE_BAR = "'checks.train.0': the condition on 'accuracy' needs exactly one of at_least, at_most"


@pytest.mark.parametrize(
    ("name", "changes", "line"),
    [
        pytest.param(
            "digits",
            [lambda d: d["train"].update(gpus_per_node=1)],
            "unknown key 'train.gpus_per_node'",
            id="unknown-key",
        ),
        pytest.param(
            "digits",
            [
                lambda d: d["checks"].update(
                    train={"metric": "accuracy", "at_least": 0.9, "at_most": 1}
                )
            ],
            ONE_BAR,
            id="condition-with-both-bars",
        ),
        pytest.param(
            "digits",
            [lambda d: d["checks"].update(train={"metric": "accuracy"})],
            ONE_BAR,
            id="condition-with-no-bar",
        ),
        pytest.param(
            "diabetes",
            [lambda d: d["checks"].update(tune={"metric": "rmse", "at_least": 50})],
            "checks.tune: 'rmse >= 50' runs against the goal 'minimize'; use at_most",
            id="tune-check-against-the-goal",
        ),
        pytest.param(
            "diabetes",
            [lambda d: d["serve"].pop("tolerance")],
            "'serve': answers: numbers needs a tolerance (the largest difference allowed)",
            id="numbers-without-tolerance",
        ),
        pytest.param(
            "digits",
            [in_first_format, lambda d: d["thresholds"].pop("serve_accuracy")],
            "missing threshold 'serve_accuracy'" + REWRITE,
            id="first-format-missing-threshold",
        ),
        pytest.param(
            "digits",
            [in_first_format, lambda d: d["tune"].update(goal="minimize")],
            "'thresholds' are 'at least' bars, but tune.goal is minimize" + REWRITE,
            id="first-format-minimizing",
        ),
    ],
)
def test_a_broken_scenario_yaml_is_one_line(
    name: str, changes: list[Change], line: str, tmp_path: Path
) -> None:
    folder = copy_of(load_scenario(name), tmp_path)
    edit_yaml(folder, *changes)
    assert load_error(folder) == f"scenario {name}: {line}"


def without_world_size(folder: Path) -> None:
    """The notebook's training script as the first release's scenarios wrote it: no
    `world_size=N` line."""
    file = folder / "explore.ipynb"
    notebook = json.loads(file.read_text())
    for cell in notebook["cells"]:
        cell["source"] = [line for line in cell["source"] if "world_size" not in line]
    file.write_text(json.dumps(notebook))


PRINT_WORLD_SIZE = (
    " — have rank 0 print it once after init_process_group, e.g. "
    'print(f"world_size={torch.distributed.get_world_size()}")'
)


@pytest.mark.parametrize("first_format", [True, False], ids=["first-format", "checks"])
def test_a_training_script_without_world_size_fails_at_load(
    digits: Scenario, tmp_path: Path, first_format: bool
) -> None:
    folder = copy_of(digits, tmp_path)
    if first_format:
        edit_yaml(folder, in_first_format)
    without_world_size(folder)
    since = " (a contract added after the first format, 'thresholds:')" if first_format else ""
    assert load_error(folder) == (
        "scenario digits: train.py (the notebook's '%%writefile train.py' cell) never prints "
        f"the world_size=N line the train step checks{since}" + PRINT_WORLD_SIZE
    )


def test_bad_quick_override_fails_at_load(digits: Scenario, tmp_path: Path) -> None:
    folder = copy_of(digits, tmp_path)
    edit_yaml(folder, lambda d: d["quick"]["train"].update(nodes=0))
    assert load_error(folder).startswith("scenario digits: quick: 'train.nodes': ")


def test_missing_file_is_named(digits: Scenario, tmp_path: Path) -> None:
    folder = copy_of(digits, tmp_path)
    (folder / "model.py").unlink()
    assert load_error(folder) == "scenario digits: missing file 'model.py'"


def test_dockerfile_copying_an_unknown_file_is_caught(digits: Scenario, tmp_path: Path) -> None:
    folder = copy_of(digits, tmp_path)
    dockerfile = folder / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "COPY --chown=1000 extra.txt /app/\n")
    assert "copies 'extra.txt'" in load_error(folder)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as caught:
        load_scenario("no-such-scenario")
    assert "digits" in caught.value.line()


def test_a_new_folder_is_a_new_scenario(
    digits: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_of(digits, tmp_path, "digits")
    edit_yaml(copy_of(digits, tmp_path, "digits_small"), lambda d: d.update(name="digits_small"))
    monkeypatch.setattr(scenario_module, "SCENARIOS_DIR", tmp_path)
    assert list_scenarios() == ["digits", "digits_small"]
    assert load_scenario("digits_small").root == tmp_path / "digits_small"


def test_build_context_holds_outputs_build_files_and_dockerfile(
    scenario: Scenario, tmp_path: Path
) -> None:
    outputs = tmp_path / "workspace"
    outputs.mkdir()
    with pytest.raises(UsageError, match=r"did not write 'train\.py'"):
        scenario.build_context(outputs, tmp_path / "context")
    (outputs / "train.py").write_text(scenario.training_code())
    context = scenario.build_context(outputs, tmp_path / "context")
    assert sorted(p.name for p in context.iterdir()) == ["Dockerfile", "model.py", "train.py"]
    assert "ARG BASE_IMAGE" in (context / "Dockerfile").read_text()
