"""The core journey, timed: each step, the whole journey, each trial's overhead (its wall time
less the script's own training time), the model server's time to ready and to its first
prediction, and the sandbox's peak memory while the journey ran."""

from __future__ import annotations

import statistics
from pathlib import Path

import docker

from kfbox.apps.bench.figures import BenchRun
from kfbox.harness.profiles import PROFILES
from kfbox.harness.runner import run_suite
from kfbox.host.config import SandboxSpec
from kfbox.host.errors import KfboxError
from kfbox.host.progress import Reporter
from kfbox.host.usage import UsageSampler


def journey_figures(run: BenchRun, spec: SandboxSpec, client: docker.DockerClient, work: Path,
                    reporter: Reporter, scenario: str = "digits") -> None:
    log = work / "journey.log"
    with reporter.step(f"The core journey ({scenario})"), log.open("w") as output, \
            UsageSampler(client, spec.name) as usage:
        outcome = run_suite(PROFILES["core"].journey(), work / "journey", spec, scenario=scenario,
                            output=output)
    record = outcome.record
    if outcome.pytest_exit_code != 0 or record is None or not record.journeys:
        raise KfboxError(f"the benchmark's journey did not pass (pytest exit "
                         f"{outcome.pytest_exit_code})", fix=f"see {log}")
    [journey] = record.journeys
    steps = {step.name: step for step in journey.steps}
    run.add("journey_s", sum(s.duration_s for s in journey.steps), "s",
            f"{scenario}, core: 2-node train, {len(journey.trials)} trials, v1 and v2")
    for name, step in steps.items():
        run.add(f"step_{name}_s", step.duration_s, "s")
    train = steps["train"].metrics
    if "train_seconds" in train:
        run.add("train_job_overhead_s", train["train_s"] - train["train_seconds"], "s",
                "the train step's job less the script's own training time")
    overheads = [t.duration_s - t.train_s for t in journey.trials if t.train_s is not None]
    if overheads:
        run.add("trial_overhead_s", statistics.median(overheads), "s",
                f"median of {len(overheads)}: a trial's wall time less its own training time")
    if "pipeline" in steps:
        by_steps = sum(steps[name].duration_s for name in ("train", "tune", "serve"))
        run.add("pipeline_vs_steps_ratio", steps["pipeline"].duration_s / by_steps, "x",
                "the pipeline step (train, trials, best, gate, serve) over train + tune + serve "
                "driven step by step, same run")
    serve = steps["serve"].metrics
    run.add("serve_ready_s", serve["ready_s"], "s", "model server start to ready")
    run.add("serve_first_prediction_s", serve["first_prediction_s"], "s",
            "model server start to its first answer (450 rows, v1)")
    run.add("journey_peak_memory_mib", usage.peak_memory_mib, "MiB",
            "the sandbox's containers (components and workloads), resident, sampled")
