"""Fixtures for the scenario tests: every shipped scenario (tests taking `scenario` run once per
scenario), its train.py on disk, a model trained by it for real."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kfbox.engines.platform import MODEL_DIR_ENV
from kfbox.scenarios.scenario import Scenario, list_scenarios, load_scenario

METRIC_LINE = re.compile(r"^([A-Za-z_][\w-]*)=([-+0-9.eE]+)$")


@dataclass
class TrainRun:
    model_dir: Path
    stdout: str
    metrics: dict[str, list[float]]
    """Every value each `name=value` line printed, in order."""

    def last(self) -> dict[str, float]:
        """The last value of each metric: what a training step is judged on."""
        return {name: values[-1] for name, values in self.metrics.items()}


@pytest.fixture(scope="session", params=list_scenarios())
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return load_scenario(request.param)


@pytest.fixture(scope="session")
def digits() -> Scenario:
    return load_scenario("digits")


@pytest.fixture(scope="session")
def diabetes() -> Scenario:
    return load_scenario("diabetes")


@pytest.fixture(scope="session")
def train_script(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train.py exactly as the notebook's %%writefile cell writes it."""
    script = tmp_path_factory.mktemp(f"{scenario.name}-workspace") / "train.py"
    script.write_text(scenario.training_code())
    return script


def _run_train(
    launcher: list[str], script: Path, args: dict[str, str], model_dir: Path
) -> TrainRun:
    """Run train.py for real, as a training node would: --key=value args, KFBOX_MODEL_DIR set."""
    env = {**os.environ, MODEL_DIR_ENV: str(model_dir)}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)  # a stray torch.distributed env would change what is tested
    # Its own process group, so a hung run's torchrun workers die with it.
    proc = subprocess.Popen(
        [*launcher, str(script), *(f"--{k}={v}" for k, v in args.items())],
        cwd=script.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, stdout + stderr
    metrics: dict[str, list[float]] = {}
    for line in stdout.splitlines():
        if match := METRIC_LINE.match(line.strip()):
            metrics.setdefault(match[1], []).append(float(match[2]))
    return TrainRun(model_dir, stdout, metrics)


@pytest.fixture(scope="session")
def run_train() -> Callable[[list[str], Path, dict[str, str], Path], TrainRun]:
    return _run_train


@pytest.fixture(scope="session")
def trained(
    scenario: Scenario, train_script: Path, tmp_path_factory: pytest.TempPathFactory
) -> TrainRun:
    """One process, the scenario's own hyperparameters."""
    model_dir = tmp_path_factory.mktemp(f"{scenario.name}-store") / "train"
    return _run_train([sys.executable], train_script, scenario.train.args, model_dir)
