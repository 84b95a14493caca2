"""How the scenario tests judge a scenario's results: a step's conditions on its metrics, and the
served answers compared and scored with the journey's own functions (kfbox.harness.answers)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from kfbox.harness import answers
from kfbox.scenarios.scenario import Condition, Scenario


def load_module(path: Path, name: str) -> ModuleType:
    """A scenario's Python file (train.py, model.py), imported from where it lies."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_meets(conditions: Sequence[Condition], metrics: dict[str, float], context: str) -> None:
    """Every condition holds on its metric (which must have been reported)."""
    for condition in conditions:
        assert condition.metric in metrics, f"{condition.metric} not reported: {context}"
        value = metrics[condition.metric]
        assert condition.holds(value), f"{condition} does not hold at {value}: {context}"


def scores(scenario: Scenario, y: np.ndarray, served: Sequence[float]) -> dict[str, float]:
    """The answers scored against the held-out truth, as the journey scores them."""
    return answers.score(scenario.serve.answers, y, list(served))


def assert_same_answers(
    scenario: Scenario, served: Sequence[float], expected: Sequence[float]
) -> None:
    """Labels equal one by one; numbers within the scenario's tolerance (the journey's test)."""
    seen = answers.compare(list(served), list(expected), scenario.serve.answers,
                           scenario.serve.tolerance or 0.0)
    assert seen.differ == 0, f"{seen.differ} answers differ (largest difference {seen.largest})"
