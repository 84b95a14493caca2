"""Tuning on lite without a Docker engine: the Optuna loop driving a stand-in training platform
(the trials' own runs are tested in tests/e2e), its goal, its failures and their causes."""

from __future__ import annotations

import threading

import pytest

from kfbox.engines.lite.tuning import OptunaTuning
from kfbox.engines.platform import (
    Experiment,
    Parameter,
    StepFailure,
    TrainJob,
    TrainResult,
)

# Tests that need no engine never read or write the user's real kfbox state.
pytestmark = pytest.mark.usefixtures("kfbox_home")


class StandIn:
    """Training whose objective is a function of the trial's lr; can fail or stay silent."""

    def __init__(self, fail: bool = False, silent: bool = False) -> None:
        self.fail, self.silent = fail, silent
        self.jobs: list[TrainJob] = []
        self.lock = threading.Lock()

    def run(self, job: TrainJob) -> TrainResult:
        with self.lock:
            self.jobs.append(job)
        if self.fail:
            raise StepFailure(f"{job.name}: boom", logs=f"{job.name} said boom")
        lr = float(job.args["lr"])
        metrics = {} if self.silent else {"loss": round(lr, 6)}
        return TrainResult(job.name, True, metrics, job.model_key, f"loss={lr}", 0.1)


def experiment(goal: str = "minimize", **changes) -> Experiment:
    trial = TrainJob("trial", "img", ["python", "/app/train.py"], {"epochs": "3"},
                     model_key="run/tune")
    settings = {"algorithm": "random", "max_trials": 6, "parallel_trials": 2, **changes}
    return Experiment("run-tune", trial, [Parameter("lr", "double", 0.001, 0.1, log=True)],
                      "loss", goal, **settings)


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_the_best_trial_follows_the_goal(goal: str) -> None:
    training = StandIn()
    result = OptunaTuning(training).run(experiment(goal))
    values = [t.metrics["loss"] for t in result.trials]
    assert len(result.trials) == 6 and all(t.succeeded for t in result.trials)
    assert result.best.metrics["loss"] == (min(values) if goal == "minimize" else max(values))
    assert [t.name for t in result.trials] == [f"run-tune-trial-{i}" for i in range(6)]
    # Each trial is the template with its own parameters and store key, the rest kept.
    job = training.jobs[0]
    assert job.args["epochs"] == "3" and "lr" in job.args
    assert {j.model_key for j in training.jobs} == {f"run/tune/trial-{i}" for i in range(6)}
    assert result.trials[0].logs.startswith("loss=")


def test_every_trial_failing_names_the_first_cause() -> None:
    with pytest.raises(StepFailure) as caught:
        OptunaTuning(StandIn(fail=True)).run(experiment())
    assert str(caught.value).startswith("all 6 trials failed; first: run-tune-trial-")
    assert "boom" in str(caught.value) and "said boom" in caught.value.logs


def test_a_trial_without_the_objective_is_a_failed_trial() -> None:
    with pytest.raises(StepFailure) as caught:
        OptunaTuning(StandIn(silent=True)).run(experiment())
    assert "printed no loss=VALUE line" in str(caught.value)


def test_an_unknown_algorithm_is_refused() -> None:
    with pytest.raises(StepFailure, match="unknown algorithm 'grid'"):
        OptunaTuning(StandIn()).run(experiment(algorithm="grid"))  # type: ignore[arg-type]


def test_an_interrupt_stops_the_running_trials_at_once() -> None:
    """Ctrl-C reaches the main thread while trials run: the shared event ends the others now
    (a job polls it), rather than at their timeout, and the interrupt goes on up."""
    stopping = threading.Event()
    ended: list[str] = []

    class Interrupted(StandIn):
        def run(self, job: TrainJob) -> TrainResult:
            if job.name.endswith("-0"):
                raise KeyboardInterrupt
            assert stopping.wait(timeout=30), "never told to stop"
            ended.append(job.name)
            raise StepFailure(f"{job.name}: stopped")

    with pytest.raises(KeyboardInterrupt):
        OptunaTuning(Interrupted(), stopping).run(experiment())
    assert stopping.is_set()
    assert ended == ["run-tune-trial-1"]  # the one running beside it; no new one started
