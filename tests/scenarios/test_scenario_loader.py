"""The scenario loader: the shipped scenario loads, profiles apply, and a broken folder says why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from kfbox.sandbox.errors import UsageError
from kfbox.scenarios import scenario as scenario_module
from kfbox.scenarios.scenario import Scenario, list_scenarios, load_scenario


def copy_of(digits: Scenario, parent: Path, name: str = "digits") -> Path:
    folder = parent / name
    shutil.copytree(digits.root, folder)
    return folder


def edit_yaml(folder: Path, change) -> None:
    file = folder / "scenario.yaml"
    data = yaml.safe_load(file.read_text())
    change(data)
    file.write_text(yaml.safe_dump(data))


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
    assert all(0 < t <= 1 for t in digits.thresholds.model_dump().values())


def test_quick_profile_merges_its_overrides(digits: Scenario) -> None:
    quick = digits.for_profile("quick")
    assert quick.profile == "quick"
    assert quick.train.nodes == 1
    assert quick.tune.max_trials < digits.tune.max_trials
    # Merged key by key: the overridden epochs change, lr and hidden stay.
    assert int(quick.train.args["epochs"]) < int(digits.train.args["epochs"])
    assert quick.train.args["lr"] == digits.train.args["lr"]
    core = digits.for_profile("core")
    assert (core.train, core.tune) == (digits.train, digits.tune)
    assert quick.root == digits.root


def test_training_code_is_the_notebooks_writefile_cell(digits: Scenario) -> None:
    code = digits.training_code()
    assert "init_process_group" in code and "%%writefile" not in code
    compile(code, "train.py", "exec")


def test_missing_threshold_is_one_line(digits: Scenario, tmp_path: Path) -> None:
    folder = copy_of(digits, tmp_path)
    edit_yaml(folder, lambda d: d["thresholds"].pop("serve_accuracy"))
    assert load_error(folder) == "scenario digits: missing threshold 'serve_accuracy'"


def test_unknown_key_is_named(digits: Scenario, tmp_path: Path) -> None:
    folder = copy_of(digits, tmp_path)
    edit_yaml(folder, lambda d: d["train"].update(gpus_per_node=1))
    assert load_error(folder) == "scenario digits: unknown key 'train.gpus_per_node'"


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
    digits: Scenario, tmp_path: Path
) -> None:
    outputs = tmp_path / "workspace"
    outputs.mkdir()
    with pytest.raises(UsageError, match=r"did not write 'train\.py'"):
        digits.build_context(outputs, tmp_path / "context")
    (outputs / "train.py").write_text(digits.training_code())
    context = digits.build_context(outputs, tmp_path / "context")
    assert sorted(p.name for p in context.iterdir()) == ["Dockerfile", "model.py", "train.py"]
    assert "ARG BASE_IMAGE" in (context / "Dockerfile").read_text()
