"""How the scenario tests judge a scenario's results: a step's conditions on its metrics, served
answers against the model evaluated locally (labels equal, numbers within the tolerance), and the
served answers' scores against the held-out truth."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

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


def scores(scenario: Scenario, y: np.ndarray, answers: Sequence[float]) -> dict[str, float]:
    """The answers scored against the held-out truth: accuracy for labels; rmse, mae and r2
    (in the target's units) for numbers."""
    truth = np.asarray(y, dtype=np.float64)
    given = np.asarray(answers, dtype=np.float64)
    if scenario.serve.answers == "labels":
        return {"accuracy": float(np.mean(given == truth))}
    error = given - truth
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(1.0 - np.sum(error**2) / np.sum((truth - truth.mean()) ** 2)),
    }


def assert_same_answers(
    scenario: Scenario, answers: Sequence[float], expected: Sequence[float]
) -> None:
    """Labels equal one by one; numbers within the scenario's tolerance."""
    assert len(answers) == len(expected)
    if scenario.serve.answers == "labels":
        assert list(answers) == list(expected)
    else:
        np.testing.assert_allclose(answers, expected, rtol=0, atol=scenario.serve.tolerance)
