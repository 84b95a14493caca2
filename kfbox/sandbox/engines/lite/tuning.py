"""Tuning on lite: an Optuna study whose trials are training jobs (Katib has no local backend).

Katib's own suggestion algorithms come from libraries like this one; the objective is read the
way Katib's StdOut collector reads it, from the trial's `name=value` lines.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import optuna

from kfbox.sandbox.platform import Experiment, Parameter, StepFailure, Training, Trial, TuneResult

SAMPLERS = {
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
}


def suggest(trial: optuna.Trial, parameter: Parameter) -> str:
    """One value for `parameter`, as the string a training job receives on its command line."""
    if parameter.type == "double":
        return repr(
            trial.suggest_float(parameter.name, parameter.min, parameter.max, log=parameter.log)
        )
    if parameter.type == "int":
        return str(
            trial.suggest_int(
                parameter.name, int(parameter.min), int(parameter.max), log=parameter.log
            )
        )
    return str(trial.suggest_categorical(parameter.name, parameter.values))


class OptunaTuning:
    def __init__(self, training: Training) -> None:
        self.training = training

    def run(self, experiment: Experiment) -> TuneResult:
        if experiment.algorithm not in SAMPLERS:
            raise StepFailure(
                f"unknown algorithm {experiment.algorithm!r}; use {', '.join(SAMPLERS)}"
            )
        started = time.monotonic()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=experiment.name,
            direction=experiment.goal,
            sampler=SAMPLERS[experiment.algorithm](experiment.seed),
        )
        trials: list[Trial] = []
        failures: list[StepFailure] = []  # in the order trials failed: the first is the cause
        lock = threading.Lock()

        def objective(optuna_trial: optuna.Trial) -> float:
            params = {p.name: suggest(optuna_trial, p) for p in experiment.parameters}
            name = f"{experiment.name}-trial-{optuna_trial.number}"
            job = replace(
                experiment.trial,
                name=name,
                args={**experiment.trial.args, **params},
                model_key=f"{experiment.trial.model_key}/trial-{optuna_trial.number}",
            )
            trial_started = time.monotonic()
            try:
                result = self.training.run(job)
            except StepFailure as failure:
                with lock:
                    trials.append(
                        Trial(
                            name,
                            params,
                            {},
                            False,
                            job.model_key,
                            time.monotonic() - trial_started,
                            failure.logs,
                        )
                    )
                    failures.append(failure)
                raise
            value = result.metrics.get(experiment.objective)
            with lock:
                trials.append(
                    Trial(
                        name,
                        params,
                        result.metrics,
                        value is not None,
                        job.model_key,
                        result.duration_s,
                        result.logs,
                    )
                )
            if value is None:
                failure = StepFailure(
                    f"trial {name} printed no {experiment.objective}=VALUE line", logs=result.logs
                )
                with lock:
                    failures.append(failure)
                raise failure
            return value

        study.optimize(
            objective,
            n_trials=experiment.max_trials,
            n_jobs=experiment.parallel_trials,
            catch=(StepFailure,),
        )
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not completed:
            # A trial's name alone sent the user digging; its failure's line is the cause.
            first = failures[0] if failures else None
            raise StepFailure(
                f"all {experiment.max_trials} trials failed"
                + (f"; first: {first}" if first else ""),
                logs="\n".join(f"##### {f}\n{f.logs}" for f in failures),
            )
        best_name = f"{experiment.name}-trial-{study.best_trial.number}"
        best = next(t for t in trials if t.name == best_name)
        trials.sort(key=lambda t: int(t.name.rsplit("-", 1)[1]))
        return TuneResult(best, trials, time.monotonic() - started)
