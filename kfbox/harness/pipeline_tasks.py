"""What each task of the journey pipeline runs, inside the scenario's image: KFP lightweight
components, so each function's body is all the task has (KFP ships its source, not this module's
imports or names: everything kfbox-specific arrives as an argument)."""

# No `from __future__ import annotations`: KFP reads these annotations as types.
from kfp import dsl
from kfp.dsl import Input, Metrics, Model, Output
from kfp.dsl.python_component import PythonComponent


def train(
    command: list,
    args: dict,
    model_dir_env: str,
    metric_format: str,
    model: Output[Model],
    metrics: Output[Metrics],
) -> dict:
    """Run the scenario's training entry point on one node with `args` as --key=value. The
    folder it saves into (named by `model_dir_env`) is this task's model; the last value of each
    name=value pair it prints (`metric_format`, Katib's StdOut format) is its output."""
    import os
    import re
    import subprocess

    os.makedirs(model.path, exist_ok=True)
    argv = [*command, *(f"--{key}={value}" for key, value in args.items())]
    env = {**os.environ, model_dir_env: model.path, "PYTHONUNBUFFERED": "1"}
    pair = re.compile(metric_format)
    found: dict = {}
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            found.update({name: float(value) for name, value in pair.findall(line)})
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with status {process.returncode}")
    for name, value in found.items():
        metrics.log_metric(name, value)
    return found


def best(
    results: list,
    models: Input[list[Model]],
    trials: list,
    objective: str,
    goal: str,
    model: Output[Model],
) -> dict:
    """The best trial on `objective` in the direction of `goal`: its model becomes this task's,
    its metrics and arguments the output. `results` and `models` come collected in trial order."""
    import shutil

    scored = [(index, result[objective]) for index, result in enumerate(results)
              if objective in result]
    if not scored:
        raise RuntimeError(f"no trial reported {objective}")
    pick = (max if goal == "maximize" else min)(scored, key=lambda pair: pair[1])[0]
    shutil.copytree(models[pick].path, model.path, dirs_exist_ok=True)
    print(f"best trial {pick}: {objective}={results[pick][objective]} ({goal}), "
          f"args {trials[pick]}", flush=True)
    return {"metrics": results[pick], "args": trials[pick], "trial": pick}


def gate(picked: dict, checks: list) -> str:
    """The quality gate: every check (metric, at_least and/or at_most) must hold on the best
    trial's metrics, else the task fails naming each one missed."""
    metrics = picked["metrics"]
    missed = []
    for check in checks:
        value = metrics.get(check["metric"])
        low, high = check.get("at_least"), check.get("at_most")
        if value is None or (low is not None and value < low) or (
                high is not None and value > high):
            missed.append(f"{check['metric']}={value} (needs at_least {low}, at_most {high})")
    if missed:
        raise RuntimeError("quality gate: " + "; ".join(missed))
    verdict = "passed: " + ", ".join(f"{c['metric']}={metrics[c['metric']]:.4g}" for c in checks)
    print(verdict, flush=True)
    return verdict


TASKS = {"train": train, "trial": train, "best": best, "gate": gate}
"""The functions a pipeline's components are made of, by the task name they run under (a trial
is a training run under its own name)."""


def component(name: str, image: str) -> PythonComponent:
    """The task `name` as a component on `image`: kfp is in kfbox's runtime image, so no task
    installs a package at start (install_kfp_package=False) and none needs an index."""
    made = dsl.component(TASKS[name], base_image=image, install_kfp_package=False)
    made.component_spec.name = name  # a pipeline's task is named after its component
    return made
