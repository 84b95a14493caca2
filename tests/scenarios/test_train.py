"""Each scenario's train.py, as the notebook writes it, run for real: one process, and two under
torchrun (gloo DDP); the numpy reference equals train.py's own network on the held-out split."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from kfbox.scenarios.scenario import Scenario
from tests.support.judge import assert_meets, assert_same_answers, load_module, scores

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
Network = Callable[[torch.Tensor], torch.Tensor]


def check_run(run: Any, scenario: Scenario, world_size: int) -> None:
    epochs = int(scenario.train.args["epochs"])
    # Rank 0 alone reports: the process group's size once, then one line per epoch.
    assert run.metrics["world_size"] == [float(world_size)]
    assert run.metrics["epoch"] == [float(e) for e in range(1, epochs + 1)]
    assert len(run.metrics["loss"]) == epochs
    assert run.metrics["loss"][-1] < run.metrics["loss"][0]
    assert_meets(scenario.checks.train, run.last(), run.stdout)
    meta = json.loads((run.model_dir / "meta.json").read_text())
    assert meta["world_size"] == world_size
    assert meta["device"] == "cpu"
    assert meta["train_seconds"] > 0
    for condition in scenario.checks.train:
        assert len(run.metrics[condition.metric]) == epochs
        assert round(meta[condition.metric], 4) == run.last()[condition.metric]
    for key, value in scenario.train.args.items():
        assert float(meta[key.replace("-", "_")]) == float(value)
    assert {p.name for p in run.model_dir.iterdir()} == {"model.pt", "weights.npz", "meta.json"}


def test_one_process_meets_the_train_checks(trained: Any, scenario: Scenario) -> None:
    check_run(trained, scenario, world_size=1)


def test_two_processes_under_torchrun(
    scenario: Scenario, train_script: Path, tmp_path: Path, run_train: Any
) -> None:
    torchrun = Path(sys.executable).parent / "torchrun"
    run = run_train(
        [str(torchrun), "--standalone", "--nnodes=1", "--nproc_per_node=2"],
        train_script,
        scenario.train.args,
        tmp_path / "model",
    )
    check_run(run, scenario, world_size=2)


def digits_network(train: ModuleType, state: dict[str, torch.Tensor], split: Split) -> Network:
    net = train.MLP(state["fc1.weight"].shape[0])
    net.load_state_dict(state)
    return lambda x: net(x).argmax(1)


def diabetes_network(train: ModuleType, state: dict[str, torch.Tensor], split: Split) -> Network:
    x_train, _, y_train, _ = split
    net = train.Regressor(state["fc1.weight"].shape[0], x_train, y_train)
    net.load_state_dict(state)
    return net.predict


TRAIN_NETWORKS = {"digits": digits_network, "diabetes": diabetes_network}
"""Each scenario's network as its train.py defines it, with trained weights, answering as served."""


def test_reference_matches_torch_on_the_held_out_split(
    trained: Any, scenario: Scenario, train_script: Path
) -> None:
    train = load_module(train_script, f"{scenario.name}_train")
    reference = scenario.reference_module()

    x, y = reference.held_out()
    split = getattr(train, f"{scenario.name}_split")()
    np.testing.assert_array_equal(x, split[1])  # the very split train.py scored
    np.testing.assert_array_equal(y, split[3])

    if scenario.name not in TRAIN_NETWORKS:
        pytest.fail(f"add {scenario.name}'s network to TRAIN_NETWORKS")
    state = torch.load(trained.model_dir / "model.pt", weights_only=True)
    network = TRAIN_NETWORKS[scenario.name](train, state, split)
    with torch.no_grad():
        expected = network(torch.from_numpy(x)).tolist()
    answers = reference.predict(trained.model_dir, x)
    assert_same_answers(scenario, answers, expected)
    # The reference scores what train.py reported (train.py in float32, the scores in float64).
    scored = scores(scenario, y, answers)
    for condition in scenario.checks.train:
        assert scored[condition.metric] == pytest.approx(trained.last()[condition.metric], abs=1e-3)
