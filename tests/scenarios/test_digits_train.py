"""The notebook's train.py, run for real: one process, and two under torchrun (gloo DDP)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kfbox.scenarios.scenario import Scenario


def check_run(run: Any, digits: Scenario, world_size: int) -> None:
    epochs = int(digits.train.args["epochs"])
    # Rank 0 alone reports: one line per epoch, however many processes train.
    assert run.metrics["epoch"] == [float(e) for e in range(1, epochs + 1)]
    assert len(run.metrics["accuracy"]) == len(run.metrics["loss"]) == epochs
    assert run.metrics["loss"][-1] < run.metrics["loss"][0]
    accuracy = run.metrics["accuracy"][-1]
    assert accuracy >= digits.thresholds.train_accuracy, run.stdout
    meta = json.loads((run.model_dir / "meta.json").read_text())
    assert meta["world_size"] == world_size
    assert meta["device"] == "cpu"
    assert round(meta["accuracy"], 4) == accuracy
    assert meta["hidden"] == int(digits.train.args["hidden"])
    assert {p.name for p in run.model_dir.iterdir()} == {"model.pt", "weights.npz", "meta.json"}


def test_one_process_reaches_the_threshold(trained: Any, digits: Scenario) -> None:
    check_run(trained, digits, world_size=1)


def test_two_processes_under_torchrun(
    digits: Scenario, train_script: Path, tmp_path: Path, run_train: Any
) -> None:
    torchrun = Path(sys.executable).parent / "torchrun"
    run = run_train(
        [str(torchrun), "--standalone", "--nnodes=1", "--nproc_per_node=2"],
        train_script,
        digits.train.args,
        tmp_path / "model",
    )
    check_run(run, digits, world_size=2)


def test_reference_matches_torch_on_the_held_out_split(
    trained: Any, digits: Scenario, train_script: Path
) -> None:
    spec = importlib.util.spec_from_file_location("digits_train", train_script)
    assert spec and spec.loader
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    reference = digits.reference_module()

    x, y = reference.held_out()
    _, x_test, _, y_test = train.digits_split()
    np.testing.assert_array_equal(x, x_test)  # the very split train.py scored
    np.testing.assert_array_equal(y, y_test)

    net = train.MLP(int(digits.train.args["hidden"]))
    net.load_state_dict(torch.load(trained.model_dir / "model.pt", weights_only=True))
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).argmax(1).tolist()
    assert reference.predict(trained.model_dir, x) == expected
    accuracy = float(np.mean(np.array(expected) == y))
    assert round(accuracy, 4) == trained.metrics["accuracy"][-1]
