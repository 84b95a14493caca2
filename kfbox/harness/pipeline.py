"""The journey as one Kubeflow Pipelines (KFP v2) pipeline, derived from a scenario: train, the
trials in parallel, the best collected in the goal's direction, a quality gate. Compiled once to
KFP's pipeline spec; that one file is what every engine runs."""

# No `from __future__ import annotations`: KFP reads the pipeline function's annotations as
# types.
import hashlib
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from kfp import compiler, dsl

from kfbox.engines.metrics import PAIR
from kfbox.engines.platform import MODEL_DIR_ENV, Parameter
from kfbox.harness import pipeline_tasks
from kfbox.scenarios.scenario import Scenario

PIPELINE_FILE = "pipeline.yaml"
"""The compiled pipeline's name in the journey's logs (and so in the results bundle)."""
STAGES: tuple[tuple[str, ...], ...] = (("train", "trial"), ("best",), ("gate",))
"""The journey pipeline's tasks by stage, in the order the graph flows: each stage's tasks wait
for the stage before (the trials run in parallel; train beside them)."""
TRIAL_SEED = 0
"""The seed of the trials' parameters: a compiled pipeline's trials are drawn before it runs,
the same ones every time (the step-by-step tune step's search adapts as trials report)."""


class JourneyOutputs(NamedTuple):
    """What the pipeline hands back: the best trial's model and its metrics, args and index."""

    model: dsl.Model
    picked: dict


@dataclass
class CompiledPipeline:
    path: Path
    sha256: str
    compile_s: float
    trials: list[dict[str, str]]
    """Each trial's arguments, in the order the pipeline runs and collects them."""


def draw_trials(parameters: list[Parameter], count: int, base: dict[str, str],
                seed: int = TRIAL_SEED) -> list[dict[str, str]]:
    """`count` trials' arguments: the train args with each parameter drawn from its range (on a
    log scale where it says so), as strings the way the tune step passes them."""
    rng = random.Random(seed)
    trials = []
    for _ in range(count):
        drawn = {}
        for p in parameters:
            if p.type == "categorical":
                drawn[p.name] = str(rng.choice(p.values))
            elif p.type == "int":
                drawn[p.name] = str(rng.randint(int(p.min or 0), int(p.max or 0)))
            elif p.log:
                low, high = math.log(p.min or 0), math.log(p.max or 0)
                drawn[p.name] = repr(math.exp(rng.uniform(low, high)))
            else:
                drawn[p.name] = repr(rng.uniform(p.min or 0, p.max or 0))
        trials.append({**base, **drawn})
    return trials


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


def compile_journey(scenario: Scenario, image: str, dest: Path) -> CompiledPipeline:
    """Compile the scenario's journey pipeline to KFP's pipeline spec at `dest`."""
    started = time.monotonic()
    tune = scenario.tune
    trials = draw_trials(tune.platform_parameters(), tune.max_trials, dict(scenario.train.args))
    dest.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(journey_pipeline(scenario, image, trials), str(dest))
    return CompiledPipeline(
        path=dest,
        sha256=file_sha256(dest),
        compile_s=time.monotonic() - started,
        trials=trials,
    )


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stage_of(task: str) -> int:
    """The stage a task of the journey pipeline belongs to (the report draws them as columns)."""
    return next(i for i, names in enumerate(STAGES) if task in names)
