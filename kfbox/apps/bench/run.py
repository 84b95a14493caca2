"""One bench run: the measures asked for, in an order that shares the work (one throwaway
sandbox for bring-up, idle memory, the command's start, the journey, the train step (one node
and the journey's nodes), the tune step and the serving load; a rootless one for the person's
path from the notebook; soak cycles of their own), and nothing left behind whatever fails."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from kfbox.apps.bench import load as serving_load
from kfbox.apps.bench import startup
from kfbox.apps.bench.bringup import bring_up_figures
from kfbox.apps.bench.byhand import job_network_s, nodes_step, train_step, tune_step
from kfbox.apps.bench.figures import BenchRun
from kfbox.apps.bench.journey import journey_figures
from kfbox.apps.bench.notebook_path import notebook_path_figures
from kfbox.apps.bench.sandboxes import bench_spec
from kfbox.apps.bench.served import serve_a_model
from kfbox.apps.bench.soak import soak
from kfbox.engines import get_engine
from kfbox.engines.lifecycle import take_down
from kfbox.engines.platform import Platform
from kfbox.host.docker_engine import connect
from kfbox.host.progress import Reporter, quiet_reporter
from kfbox.host.usage import sandbox_memory_mib

SETTLE_S = 5
"""Seconds the servers get to settle before their idle memory is read."""


@dataclass
class Options:
    cold: bool = False
    journey: bool = True
    train_runs: int = 3
    tune_runs: int = 1
    serve_requests: int = 2000
    concurrency: int = 8
    soak: int = 0
    notebook_path: bool = True


def run_bench(options: Options, reporter: Reporter) -> BenchRun:
    client = connect()
    run = BenchRun()
    engine = get_engine(bench_spec())
    with tempfile.TemporaryDirectory(prefix="kfbox-bench-") as tmp:
        work = Path(tmp)
        try:
            bring_up_figures(run, engine, client, cold=options.cold, reporter=reporter)
            time.sleep(SETTLE_S)
            run.add("idle_memory_mib", sandbox_memory_mib(client, engine.spec.name), "MiB",
                    "the running sandbox's containers, resident")
            cli_figures(run, engine.spec.name, reporter)
            if options.journey:
                journey_figures(run, engine.spec, client, work, reporter)
            platform = engine.platform(work / "platform")
            try:
                if options.train_runs:
                    train_figures(run, client, engine.spec.name, platform, work,
                                  options.train_runs, reporter)
                if options.tune_runs:
                    tune_figures(run, client, engine.spec.name, platform, work / "tune",
                                 options.tune_runs, reporter)
                if options.serve_requests:
                    serve_figures(run, platform, work / "serve", options, reporter)
            finally:
                platform.close()
        finally:
            left = take_down(engine, quiet_reporter(), keep_data=False)
            if left:
                run.notes.append("left behind: " + ", ".join(left))
    if options.notebook_path:
        with tempfile.TemporaryDirectory(prefix="kfbox-bench-") as tmp:
            notebook_path_figures(run, Path(tmp), reporter)
    if options.soak:
        soaked = soak(client, options.soak, reporter)
        run.add("soak_cycles", soaked.cycles, "cycles", "up and down of a new sandbox")
        run.add("soak_failures", len(soaked.failures), "cycles")
        run.add("soak_leftovers", len(soaked.leftovers), "objects",
                "containers, networks, volumes, state folders, image tags")
        run.add("soak_up_s", soaked.median(soaked.up_s), "s", "median")
        run.add("soak_down_s", soaked.median(soaked.down_s), "s", "median")
        run.notes += soaked.failures + soaked.leftovers
    return run


def cli_figures(run: BenchRun, sandbox: str, reporter: Reporter) -> None:
    with reporter.step(f"The kfbox command's start ({startup.RUNS} runs each)"):
        run.add("cli_help_s", startup.start_s(["--help"]), "s",
                f"`kfbox --help`, median of {startup.RUNS} fresh processes")
        run.add("cli_status_s", startup.start_s(["--name", sandbox, "status"]), "s",
                f"`kfbox status` of the running sandbox, its health checks included, median of "
                f"{startup.RUNS} fresh processes")


def train_figures(run: BenchRun, client: docker.DockerClient, sandbox: str, platform: Platform,
                  work: Path, runs: int, reporter: Reporter) -> None:
    """One node, then the core journey's job (every node), each beside the same by hand."""
    step = train_step(client, sandbox, platform, work / "train", runs, reporter)
    run.add("train_harness_s", step.harness_s, "s",
            f"median of {runs}: one node through TrainerClient")
    run.add("train_docker_run_s", step.docker_run_s, "s",
            "the same training under `docker run python train.py`")
    run.add("train_overhead_ratio", step.ratio, "x", "harness / docker run")
    run.add("train_job_network_s", job_network_s(client, sandbox, runs), "s",
            "a network made and removed, as the Kubeflow SDK's container backend does around "
            "every job: the SDK's share of the train step's overhead")
    step = nodes_step(client, sandbox, platform, work / "nodes", runs, reporter)
    run.add("nodes_harness_s", step.harness_s, "s",
            f"median of {runs}: the core journey's train job (every node) through "
            "TrainerClient")
    run.add("nodes_docker_run_s", step.docker_run_s, "s",
            "the same job by hand: torchrun in one plain `docker run` per node, all at once")
    run.add("nodes_overhead_ratio", step.ratio, "x", "harness / docker run")
    run.add("nodes_overhead_vs_docker_run_s", step.harness_s - step.docker_run_s, "s",
            "what the platform adds to the same job: the Kubeflow SDK's container backend "
            "starts node 1 once node 0's port answers, checking every 2 s")


def tune_figures(run: BenchRun, client: docker.DockerClient, sandbox: str, platform: Platform,
                 work: Path, runs: int, reporter: Reporter) -> None:
    step = tune_step(client, sandbox, platform, work, runs, reporter)
    run.add("tune_harness_s", step.harness_s, "s",
            f"median of {runs}: the core journey's experiment through the platform's tuning")
    run.add("tune_docker_run_s", step.docker_run_s, "s",
            "the same trials (the values the harness's trials got), as many at a time, under "
            "plain `docker run`s")
    run.add("tune_overhead_ratio", step.ratio, "x", "harness / docker run")
    run.add("trial_overhead_vs_docker_run_s", step.item_overhead_s, "s",
            "a trial's median wall time through the harness less the same trials' by hand")


def serve_figures(run: BenchRun, platform: Platform, work: Path, options: Options,
                  reporter: Reporter) -> None:
    with reporter.step("A model to serve (quick digits, one node)"):
        endpoint = serve_a_model(platform, work)
    with reporter.step(f"Serving {options.serve_requests} requests, {options.concurrency} at "
                       "a time"):
        result = serving_load.load(endpoint, options.serve_requests, options.concurrency)
    note = f"{options.serve_requests} requests, one row each, {options.concurrency} at a time"
    run.add("serve_throughput_rps", result.throughput, "req/s", note + ", v1 and v2 alternating")
    for protocol in ("v1", "v2"):
        run.add(f"serve_{protocol}_p50_ms", 1000 * result.percentile(protocol, 50), "ms")
        run.add(f"serve_{protocol}_p99_ms", 1000 * result.percentile(protocol, 99), "ms")
    run.add("serve_errors", sum(result.errors.values()), "requests",
            result.first_error or "every request answered")
