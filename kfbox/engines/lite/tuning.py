"""Tuning on lite: an Optuna study whose trials are training jobs (Katib has no local backend).

Katib's own suggestion algorithms come from libraries like this one; the objective is read the
way Katib's StdOut collector reads it, from the trial's `name=value` lines. Trials run in a pool
of our own (Optuna's ask/tell), not Optuna's n_jobs threads: an interrupt must stop the running
trials at once, where Optuna's pool would wait for each to finish.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace

import optuna

from kfbox.engines.platform import Experiment, Parameter, StepFailure, Training, Trial, TuneResult

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
    def __init__(self, training: Training, stopping: threading.Event | None = None) -> None:
        self.training = training
        self.stopping = stopping or threading.Event()
        """Shared with the training driver: set on an interrupt, it ends running jobs."""

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
        with ThreadPoolExecutor(max_workers=experiment.parallel_trials) as pool:
            try:
                self._search(study, experiment, pool, trials, failures)
            except BaseException:
                self.stopping.set()  # an interrupt: running jobs end now, not at their timeout
                raise
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not completed:
            # A trial's name alone sent the user digging; its failure's line is the cause.
            first = failures[0] if failures else None
            raise StepFailure(
                f"all {experiment.max_trials} trials failed"
                + (f"; first: {first}" if first else ""),
                logs="\n".join(f"##### {f}\n{f.logs}" for f in failures),
            )
        best_name = trial_name(experiment, study.best_trial.number)
        trials.sort(key=lambda t: int(t.name.rsplit("-", 1)[1]))
        best = next(t for t in trials if t.name == best_name)
        return TuneResult(best, trials, time.monotonic() - started)

    def _search(
        self,
        study: optuna.Study,
        experiment: Experiment,
        pool: ThreadPoolExecutor,
        trials: list[Trial],
        failures: list[StepFailure],
    ) -> None:
        """Keep `parallel_trials` trials running until `max_trials` have been told."""
        running: dict[Future[Trial], optuna.Trial] = {}
        asked = 0
        while asked < experiment.max_trials or running:
            while asked < experiment.max_trials and len(running) < experiment.parallel_trials:
                optuna_trial = study.ask()
                running[pool.submit(self._trial, experiment, optuna_trial)] = optuna_trial
                asked += 1
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                self._tell(study, running.pop(future), future, experiment, trials, failures)

    def _trial(self, experiment: Experiment, optuna_trial: optuna.Trial) -> Trial:
        """Run one trial's training job (in the pool); a failure is its Trial's StepFailure."""
        params = {p.name: suggest(optuna_trial, p) for p in experiment.parameters}
        name = trial_name(experiment, optuna_trial.number)
        job = replace(
            experiment.trial,
            name=name,
            args={**experiment.trial.args, **params},
            model_key=f"{experiment.trial.model_key}/trial-{optuna_trial.number}",
        )
        started = time.monotonic()
        try:
            result = self.training.run(job)
        except StepFailure as failure:
            raise TrialFailed(
                Trial(name, params, {}, False, job.model_key, time.monotonic() - started,
                      failure.logs), failure) from failure
        value = result.metrics.get(experiment.objective)
        trial = Trial(name, params, result.metrics, value is not None, job.model_key,
                      result.duration_s, result.logs, result.started_at)
        if value is None:
            silent = StepFailure(f"trial {name} printed no {experiment.objective}=VALUE line",
                                 logs=result.logs)
            raise TrialFailed(trial, silent)
        return trial

    @staticmethod
    def _tell(
        study: optuna.Study,
        optuna_trial: optuna.Trial,
        future: Future[Trial],
        experiment: Experiment,
        trials: list[Trial],
        failures: list[StepFailure],
    ) -> None:
        try:
            trial = future.result()
        except TrialFailed as failed:
            trials.append(failed.trial)
            failures.append(failed.failure)
            study.tell(optuna_trial, state=optuna.trial.TrialState.FAIL)
            return
        trials.append(trial)
        study.tell(optuna_trial, trial.metrics[experiment.objective])


def trial_name(experiment: Experiment, number: int) -> str:
    return f"{experiment.name}-trial-{number}"


class TrialFailed(Exception):
    """A trial's training job failed or reported no objective: the Trial, and why."""

    def __init__(self, trial: Trial, failure: StepFailure) -> None:
        super().__init__(str(failure))
        self.trial = trial
        self.failure = failure
