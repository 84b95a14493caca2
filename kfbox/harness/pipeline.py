"""The journey as one Kubeflow Pipelines (KFP v2) pipeline, derived from a scenario: train, the
trials in parallel, the best collected in the goal's direction, a quality gate. Compiled once to
KFP's pipeline spec; that one file is what every engine runs."""

import hashlib
import importlib.util
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kfbox.engines.platform import Parameter, first_line
from kfbox.host.errors import UsageError
from kfbox.scenarios.scenario import Scenario

PIPELINE_FILE = "pipeline.yaml"
"""The compiled pipeline's name in the journey's logs (and so in the results bundle)."""
SCENARIO_PIPELINE = "journey_pipeline"
"""What a scenario's own pipeline file defines: journey_pipeline(image) returns its pipeline."""
CHECK_IMAGE = "127.0.0.1:5000/kfbox/scenario@sha256:" + "0" * 64
"""The image a scenario's pipeline is checked with before the build makes the real one."""
STAGES: tuple[tuple[str, ...], ...] = (("train", "trial"), ("best",), ("gate",))
"""The journey pipeline's tasks by stage, in the order the graph flows: each stage's tasks wait
for the stage before (the trials run in parallel; train beside them)."""
TRIAL_SEED = 0
"""The seed of the trials' parameters: a compiled pipeline's trials are drawn before it runs,
the same ones every time (the step-by-step tune step's search adapts as trials report)."""


@dataclass
class CompiledPipeline:
    path: Path
    sha256: str
    compile_s: float
    trials: list[dict[str, str]]
    """Each trial's arguments, in the order the derived pipeline runs and collects them (empty
    for a scenario's own pipeline)."""


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


def scenario_pipeline(scenario: Scenario, image: str) -> Any:
    """The scenario's own journey pipeline: its file's `journey_pipeline(image)`."""
    assert scenario.pipeline is not None
    path = scenario.path(scenario.pipeline)
    loaded = importlib.util.spec_from_file_location(f"kfbox_pipeline_{scenario.name}", path)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    build = getattr(module, SCENARIO_PIPELINE, None)
    if build is None:
        raise UsageError(f"scenario {scenario.name}: {scenario.pipeline} defines no "
                         f"{SCENARIO_PIPELINE}(image)", fix="see docs/scenarios.md")
    return build(image)


def compile_journey(scenario: Scenario, image: str, dest: Path) -> CompiledPipeline:
    """Compile the scenario's journey pipeline (its own, else derived) to KFP's pipeline spec at
    `dest`; a pipeline kfp.local could not run as the sandbox runs it is refused in one line."""
    started = time.monotonic()
    dest.parent.mkdir(parents=True, exist_ok=True)
    label = f"scenario {scenario.name}: {scenario.pipeline or 'the derived pipeline'}"
    trials: list[dict[str, str]] = []  # drawn only for the derived pipeline
    # Imported here: KFP's DSL and compiler load all of kfp (1.5 s on this machine), which
    # every process that imports the harness would pay, and few of them compile.
    from kfp import compiler

    from kfbox.harness.pipeline_dsl import journey_pipeline

    try:
        if scenario.pipeline:
            pipeline = scenario_pipeline(scenario, image)
        else:
            tune = scenario.tune
            trials = draw_trials(tune.platform_parameters(), tune.max_trials,
                                 dict(scenario.train.args))
            pipeline = journey_pipeline(scenario, image, trials)
        compiler.Compiler().compile(pipeline, str(dest))
    except UsageError:
        raise
    except Exception as exc:  # the KFP SDK's own refusal, or the file's: one line either way
        raise UsageError(f"{label} does not compile: {first_line(exc)}",
                         fix="fix the pipeline file (docs/scenarios.md)") from None
    check_runs_locally(list(yaml.safe_load_all(dest.read_text())), image, label)
    return CompiledPipeline(
        path=dest,
        sha256=file_sha256(dest),
        compile_s=time.monotonic() - started,
        trials=trials,
    )


# What kfp.local cannot run, as KFP 2.17.3 compiles it: a container's `resources` (set_cpu_limit,
# set_memory_request, set_accelerator_type, ...: kfp/compiler/pipeline_spec_builder.py), and a
# second document `platforms` (kfp-kubernetes' Kubernetes-only settings: volumes, secrets,
# node selectors, tolerations).
LOCAL_REFUSES = {
    "resources": "resource requests, limits or GPUs (kfp.local runs none)",
    "platforms": "Kubernetes-only settings (kfp-kubernetes)",
}
REQUIRED_OUTPUTS = {"artifacts": "model", "parameters": "picked"}
"""What the pipeline step reads back: the model to serve, and the best trial's metrics."""


def check_runs_locally(documents: list[dict], image: str, label: str) -> None:
    """Refuse, in one line naming the task and the feature, a compiled pipeline the sandbox
    cannot run: a task on another image than the built one, a feature kfp.local lacks, or no
    `model` and `picked` outputs for the step to serve and judge."""
    spec = documents[0]
    for document in documents[1:]:
        if "platforms" in document:
            raise UsageError(f"{label} uses {LOCAL_REFUSES['platforms']}",
                             fix="remove them: the pipeline runs on lite with kfp.local")
    for name, executor in spec.get("deploymentSpec", {}).get("executors", {}).items():
        container = executor.get("container", {})
        task = name.removeprefix("exec-")
        if container.get("image") != image:
            raise UsageError(f"{label}: task {task} runs image {container.get('image')!r}, not "
                             "the sandbox's", fix="give every component the image "
                             f"{SCENARIO_PIPELINE}(image) is called with")
        if container.get("resources"):
            raise UsageError(f"{label}: task {task} sets {', '.join(container['resources'])}: "
                             f"{LOCAL_REFUSES['resources']}", fix="remove them for lite")
    outputs = spec.get("root", {}).get("outputDefinitions", {})
    for kind, name in REQUIRED_OUTPUTS.items():
        if name not in outputs.get(kind, {}):
            raise UsageError(f"{label} returns no {name!r}",
                             fix="return a NamedTuple of model (dsl.Model) and picked (dict)")


def check_scenario_pipeline(scenario: Scenario, folder: Path) -> None:
    """Compile the scenario's own pipeline before anything runs, on a stand-in for the image the
    build will make: a bad one is one line now, not a failed step later."""
    compile_journey(scenario, CHECK_IMAGE, folder / PIPELINE_FILE)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stage_of(task: str) -> int:
    """The stage a task of the derived pipeline belongs to (the report draws them as columns); a
    scenario's own pipeline's tasks are drawn in one."""
    return next((i for i, names in enumerate(STAGES) if task in names), 0)
