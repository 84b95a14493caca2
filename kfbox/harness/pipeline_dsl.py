"""The journey pipeline in KFP's DSL: train, the trials in parallel, the best collected in the
goal's direction, a quality gate, over the built scenario image (pipeline.py compiles it; kept
apart so that only a compile imports kfp)."""

# No `from __future__ import annotations`: KFP reads the pipeline function's annotations as
# types.
from typing import Any, NamedTuple

from kfp import dsl

from kfbox.engines.metrics import PAIR
from kfbox.engines.platform import MODEL_DIR_ENV
from kfbox.harness import pipeline_tasks
from kfbox.scenarios.scenario import Scenario


class JourneyOutputs(NamedTuple):
    """What the pipeline hands back: the best trial's model and its metrics, args and index."""

    model: dsl.Model
    picked: dict



def journey_pipeline(scenario: Scenario, image: str, trials: list[dict[str, str]]) -> Any:
    """The scenario's journey as a KFP pipeline over `image` (the built scenario image); every
    argument is baked in as a default, so the compiled file runs as it is."""
    train = pipeline_tasks.component("train", image)
    trial = pipeline_tasks.component("trial", image)
    best = pipeline_tasks.component("best", image)
    gate = pipeline_tasks.component("gate", image)
    tune = scenario.tune
    checks = [c.model_dump(exclude_none=True) for c in scenario.checks.tune]
    command, args = list(scenario.train.command), dict(scenario.train.args)

    @dsl.pipeline(name=f"kfbox-{scenario.name}",
                  description=f"{scenario.name}: train, tune, gate (kfbox's journey)")
    def journey(
        command: list = command,
        args: dict = args,
        trials: list = trials,
        objective: str = tune.objective,
        goal: str = tune.goal,
        checks: list = checks,
        model_dir_env: str = MODEL_DIR_ENV,
        metric_format: str = PAIR.pattern,
    ) -> JourneyOutputs:
        trained = train(command=command, args=args, model_dir_env=model_dir_env,
                        metric_format=metric_format)
        with dsl.ParallelFor(trials, parallelism=tune.parallel_trials) as trial_args:
            tried = trial(command=command, args=trial_args, model_dir_env=model_dir_env,
                          metric_format=metric_format)
        picked = best(results=dsl.Collected(tried.outputs["Output"]),
                      models=dsl.Collected(tried.outputs["model"]),
                      trials=trials, objective=objective, goal=goal).after(trained)
        gate(picked=picked.outputs["Output"], checks=checks)
        return JourneyOutputs(model=picked.outputs["model"], picked=picked.outputs["Output"])

    return journey
