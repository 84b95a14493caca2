"""The Critical User Journey, engine-agnostic: notebook → build → train → tune → serve, and the
same journey as one pipeline.

Each step reads what earlier steps left in the Journey (the notebook's outputs are what gets
built, the built image is what trains and tunes, the best trial's model is what gets served),
records a check against each requirement it proves, keeps its workloads' logs, and returns its
metrics. A step fails by raising StepFailure (the platform could not do it) or JourneyCheckFailed
(it ran, but a MUST requirement did not hold); a failed SHOULD check is recorded, not raised.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kfbox.engines.metrics import parse_metrics, parse_series
from kfbox.engines.platform import (
    BuiltImage,
    Endpoint,
    ModelVersion,
    PipelineRun,
    Platform,
    RecordedRun,
    ServeRequest,
    StepFailure,
    TrackedRun,
    TrainJob,
    TrainResult,
    TuneResult,
)
from kfbox.harness import answers
from kfbox.harness.pipeline import PIPELINE_FILE, compile_journey, file_sha256, stage_of
from kfbox.harness.records import CheckRecord, TrialRecord
from kfbox.harness.requirements import REQUIREMENTS, STEPS
from kfbox.scenarios.scenario import Condition, Scenario

NOTEBOOK_TIMEOUT_S = 600
TRAIN_SECONDS = "train_seconds"
"""The metric a training script may print with its own training time: the rest of a job's
wall time is the platform's (start-up, rendezvous, image pull), as reports and bench show."""
MODEL_SERVER = "model"
"""The name of the journey's model server on the platform."""
TRACKING_REQUESTS = 4
"""Runs recorded or read at once by the track step."""
MODEL_ALIAS = "champion"
"""The alias the track step gives the version it registers (the model the journey serves)."""
FILES_TAG = "kfbox.files_sha256"
"""A registered version's tag: the digest of its files as registered (tree_sha256)."""
IMAGE_TAG = "kfbox.image_digest"
"""A tracked run's tag: the digest of the image it ran (the sandbox registry's)."""
PIPELINE_MODEL_SERVER = "pipeline-model"
"""The pipeline step's model server (beside the journey's, removed when the step ends)."""


class JourneyCheckFailed(AssertionError):
    """A step ran but a MUST requirement did not hold (a check, a comparison)."""


@dataclass
class Journey:
    scenario: Scenario
    platform: Platform
    run_dir: Path
    """The journey's own files (build context, fetched models); never in the bundle."""
    logs_dir: Path
    """The journey's workload logs (training nodes, trials, model server): in the bundle."""
    run_id: str
    gpus: int = 0
    outputs: Path | None = None
    """The files the notebook wrote (its training code), fetched from the notebook server."""
    image: BuiltImage | None = None
    trained: TrainResult | None = None
    tuned: TuneResult | None = None
    endpoint: Endpoint | None = None
    tracked: dict[str, str] = field(default_factory=dict)
    """Run ids on the tracking server: `train`, `study`, and each trial's by its name."""
    registered: ModelVersion | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: dict[str, list[CheckRecord]] = field(default_factory=dict)
    curve: dict[str, list[float]] = field(default_factory=dict)
    trials: list[TrialRecord] = field(default_factory=list)
    step_name: str = ""

    def run(self, step: str) -> None:
        """Run one step; its metrics and checks stay in the journey for the recorder."""
        self.step_name = step
        self.checks[step] = []
        self.metrics[step] = STEP_FUNCTIONS[step](self)

    def check(self, requirement: str, passed: bool, detail: str) -> None:
        """Record a check of `requirement`; a failed MUST check fails the step."""
        self.checks.setdefault(self.step_name, []).append(
            CheckRecord(requirement, passed, detail)
        )
        if not passed and REQUIREMENTS[requirement].level == "MUST":
            raise JourneyCheckFailed(detail)

    def meets(
        self, requirement: str, conditions: list[Condition], metrics: dict[str, float], what: str
    ) -> None:
        """Check each of the scenario's conditions on `metrics`."""
        for passed, detail in judge_conditions(conditions, metrics, what):
            self.check(requirement, passed, detail)

    def keep_log(self, name: str, text: str) -> None:
        """A workload's output, kept with the run's logs (pass or fail)."""
        path = self.logs_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def inputs(self) -> dict[str, Any]:
        """What the steps so far hand on to the next: written to the diagnostics on failure."""
        return {
            "scenario": str(self.scenario.root),
            "variant": self.scenario.variant,
            "run_id": self.run_id,
            "gpus": self.gpus,
            "outputs": str(self.outputs) if self.outputs else None,
            "image": self.image.reference if self.image else None,
            "train": {"model_key": self.trained.model_key, "metrics": self.trained.metrics}
            if self.trained
            else None,
            "tune_best": {
                "parameters": self.tuned.best.parameters,
                "model_key": self.tuned.best.model_key,
            }
            if self.tuned
            else None,
            "endpoint": self.endpoint.url if self.endpoint else None,
        }

    def gpu_check(self, what: str, requested: int) -> None:
        if self.gpus:
            self.check("gpu.workloads", requested >= 1,
                       f"{what} requested {requested} GPU(s); the platform offers {self.gpus}")


def notebook_step(journey: Journey) -> dict[str, Any]:
    """Run the scenario notebook in the sandbox's notebook server; fetch what it wrote."""
    scenario = journey.scenario
    remote_dir = f"kfbox-runs/{journey.run_id}"
    result = journey.platform.notebooks.execute(
        scenario.path(scenario.notebook), remote_dir, timeout_s=NOTEBOOK_TIMEOUT_S
    )
    journey.outputs = journey.run_dir / "outputs"
    fetched = {p.name for p in journey.platform.notebooks.fetch(remote_dir, journey.outputs)}
    missing = [name for name in scenario.notebook_outputs if name not in fetched]
    journey.check(
        "notebook.executes",
        not missing,
        f"the notebook did not write {', '.join(missing)}" if missing else
        f"{result.cells_run} cells ran; it wrote {', '.join(scenario.notebook_outputs)}",
    )
    printed = notebook_metrics(result.executed)
    journey.meets("notebook.baseline", scenario.checks.notebook, printed, "notebook")
    return {"cells_run": result.cells_run, **printed}


def notebook_metrics(executed: Path) -> dict[str, float]:
    """`name=value` lines the notebook printed (stream outputs), in cell order."""
    cells = json.loads(executed.read_text())["cells"]
    text = []
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                body = output.get("text", "")
                text.append("".join(body) if isinstance(body, list) else body)
    return parse_metrics("\n".join(text))


def build_step(journey: Journey) -> dict[str, Any]:
    """Build the notebook's output with the scenario's Dockerfile; push to the sandbox registry."""
    if journey.outputs is None:
        raise JourneyCheckFailed("no notebook outputs: the notebook step did not run")
    context = journey.scenario.build_context(journey.outputs, journey.run_dir / "build")
    journey.image = journey.platform.images.build(
        context,
        f"kfbox/{journey.scenario.name}",
        build_args={"BASE_IMAGE": journey.platform.runtime_image},
    )
    pinned = "@sha256:" in journey.image.reference
    journey.check("build.pushed", pinned, f"pushed as {journey.image.reference}" if pinned
                  else f"{journey.image.reference} is not pinned by a digest")
    return {
        "image": journey.image.reference,
        "digest": journey.image.digest,
        "build_s": round(journey.image.duration_s, 2),
    }


def _job(journey: Journey, name: str, nodes: int, model_key: str) -> TrainJob:
    scenario = journey.scenario
    assert journey.image is not None
    return TrainJob(
        name=name,
        image=journey.image.reference,
        command=list(scenario.train.command),
        args=dict(scenario.train.args),
        num_nodes=nodes,
        gpus=journey.gpus,
        model_key=model_key,
        timeout_s=scenario.train.timeout_s,
    )


def train_step(journey: Journey) -> dict[str, Any]:
    """Train the built image on the scenario's node count; the model lands in the store."""
    if journey.image is None:
        raise JourneyCheckFailed("no image: the build step did not run")
    job = _job(
        journey, f"{journey.run_id}-train", journey.scenario.train.nodes, f"{journey.run_id}/train"
    )
    journey.gpu_check("the training job", job.gpus)
    try:
        journey.trained = journey.platform.training.run(job)
    finally:  # a failed job's logs are in its StepFailure, which the diagnostics keep
        if journey.trained is not None:
            journey.keep_log("train.log", journey.trained.logs)
    trained = journey.trained
    journey.curve = parse_series(trained.logs)
    # torch.distributed's world: one process per node on CPU, one per GPU on a GPU node.
    expected = job.num_nodes * max(job.gpus, 1)
    world = trained.metrics.get("world_size")
    journey.check(
        "train.process-group",
        world == expected,
        f"world_size={world:g} for {job.num_nodes} node(s)" if world is not None
        else "the training script reported no world_size=N line",
    )
    saved = journey.platform.artifacts.list(job.model_key)
    journey.check("train.model", bool(saved),
                  f"{len(saved)} file(s) saved under {job.model_key}" if saved
                  else f"training saved nothing under {job.model_key} in the model store")
    journey.meets("train.model", journey.scenario.checks.train, trained.metrics, "trained model")
    return {
        **trained.metrics,
        "nodes": job.num_nodes,
        "gpus": job.gpus,
        "model_files": len(saved),
        "train_s": round(trained.duration_s, 2),
    }


def tune_step(journey: Journey) -> dict[str, Any]:
    """Search the scenario's parameters; each trial is a training job of the built image."""
    if journey.image is None:
        raise JourneyCheckFailed("no image: the build step did not run")
    tune = journey.scenario.tune
    # Trials run single-node: a search explores hyperparameters, not the distributed setup
    # that the train step already proved, and parallel multi-node trials would not fit 2 cores.
    experiment = tune.experiment(f"{journey.run_id}-tune",
                                 _job(journey, "trial", 1, f"{journey.run_id}/tune"))
    journey.gpu_check("each trial", experiment.trial.gpus)
    tuned = journey.tuned = journey.platform.tuning.run(experiment)
    for trial in tuned.trials:
        journey.keep_log(f"tune/{trial.name}.log", trial.logs)
    journey.trials = [
        TrialRecord(t.name, t.parameters, t.metrics.get(tune.objective), t.succeeded,
                    best=t.name == tuned.best.name, duration_s=round(t.duration_s, 3),
                    train_s=t.metrics.get(TRAIN_SECONDS))
        for t in tuned.trials
    ]
    silent = [t.name for t in journey.trials if t.objective is None]
    journey.check(
        "tune.every-trial",
        not silent and len(tuned.trials) == tune.max_trials,
        f"{len(tuned.trials)} of {tune.max_trials} trials ran; none reported {tune.objective}: "
        f"{', '.join(silent)}" if silent else
        f"{len(tuned.trials)} of {tune.max_trials} trials reported {tune.objective}",
    )
    values = [t.objective for t in journey.trials if t.objective is not None]
    best_value = tuned.best.metrics.get(tune.objective)
    truly_best = (max if tune.goal == "maximize" else min)(values)
    journey.check(
        "tune.best",
        best_value == truly_best,
        f"best trial {tuned.best.name}: {tune.objective}={best_value} ({tune.goal})"
        if best_value == truly_best else
        f"the best trial reported {tune.objective}={best_value}, but another reached "
        f"{truly_best} ({tune.goal})",
    )
    journey.meets("tune.best", journey.scenario.checks.tune, tuned.best.metrics, "best trial")
    return {
        f"best_{tune.objective}": best_value,
        "best_parameters": tuned.best.parameters,
        "trials": len(tuned.trials),
        "trials_succeeded": sum(t.succeeded for t in tuned.trials),
        "algorithm": tune.algorithm,
        "goal": tune.goal,
        "tune_s": round(tuned.duration_s, 2),
    }


def track_step(journey: Journey) -> dict[str, Any]:
    """Record the training job and every trial on the tracking server (the trials under their
    study), read them back, and register the best trial's model with an alias."""
    if journey.image is None or journey.trained is None or journey.tuned is None:
        raise JourneyCheckFailed("nothing to track: the train or tune step did not succeed")
    started = time.monotonic()
    scenario, tracking = journey.scenario, journey.platform.tracking
    image, trained, tuned = journey.image, journey.trained, journey.tuned
    tags = {IMAGE_TAG: image.digest, "kfbox.image": image.reference,
            "kfbox.journey": journey.run_id, "kfbox.scenario": scenario.name}
    sent = {"train": TrackedRun(
        scenario.name, f"{journey.run_id}-train",
        {**scenario.train.args, "nodes": str(scenario.train.nodes)},
        parse_series(trained.logs), {**tags, "kfbox.nodes": str(scenario.train.nodes)},
        trained.started_at, trained.duration_s)}
    tune = scenario.tune
    sent["study"] = TrackedRun(
        scenario.name, f"{journey.run_id}-tune",
        {"objective": tune.objective, "goal": tune.goal, "algorithm": tune.algorithm,
         "max_trials": str(tune.max_trials), "parallel_trials": str(tune.parallel_trials)},
        {f"best_{tune.objective}": [tuned.best.metrics.get(tune.objective, float("nan"))]},
        {**tags, "kfbox.nodes": "1", "kfbox.best_trial": tuned.best.name},
        min((t.started_at for t in tuned.trials if t.started_at), default=0.0),
        tuned.duration_s)
    # Each run is a few requests that wait on the server: several at a time (the trials need
    # their study's id first).
    with ThreadPoolExecutor(max_workers=TRACKING_REQUESTS) as pool:
        journey.tracked.update(zip(sent, pool.map(tracking.record, sent.values()), strict=True))
        for trial in tuned.trials:
            sent[trial.name] = TrackedRun(
                scenario.name, trial.name,
                {**scenario.train.args, **trial.parameters, "nodes": "1"},
                parse_series(trial.logs), {**tags, "kfbox.nodes": "1"}, trial.started_at,
                trial.duration_s, trial.succeeded, parent=journey.tracked["study"])
        trials = [sent[t.name] for t in tuned.trials]
        journey.tracked.update(zip((t.name for t in tuned.trials),
                                   pool.map(tracking.record, trials), strict=True))
        read = dict(zip(sent, pool.map(tracking.read, (journey.tracked[n] for n in sent)),
                        strict=True))
    wrong = [problem for name, run in sent.items()
             for problem in _differences(run.name, run, read[name])]
    journey.check("track.runs", not wrong,
                  f"{len(sent)} runs read back from {tracking.url} (the training job, the "
                  f"study {journey.tracked['study']} and its {len(tuned.trials)} trials), each "
                  "with its parameters, metric series, image digest, nodes and duration"
                  if not wrong else "; ".join(wrong[:3]))
    best = tuned.best
    model_dir = fetch_model(journey, best.model_key)
    files = tree_sha256(model_dir)
    version = journey.registered = tracking.register(
        scenario.serve.model_name, journey.tracked[best.name], model_dir,
        tags={FILES_TAG: files, IMAGE_TAG: image.digest, "kfbox.journey": journey.run_id},
        alias=MODEL_ALIAS)
    stored = tree_sha256(fetch_model(journey, version.model_key, fresh=True))
    journey.check(
        "track.registered",
        version.run_id == journey.tracked[best.name] and MODEL_ALIAS in version.aliases
        and stored == files,
        f"{version.name} version {version.version} (@{MODEL_ALIAS}) from {best.name}'s run, "
        f"its files at {version.model_key}, sha256 {files[:12]}" if stored == files else
        f"{version.name} version {version.version}: its files in the model store (sha256 "
        f"{stored[:12]}) are not {best.name}'s ({files[:12]})")
    return {"runs": len(sent), "train_run": journey.tracked["train"],
            "study_run": journey.tracked["study"], "model": version.name,
            "model_version": version.version, "alias": MODEL_ALIAS,
            "tracking_url": tracking.url, "track_s": round(time.monotonic() - started, 2)}


def _differences(name: str, sent: TrackedRun, read: RecordedRun) -> list[str]:
    """How the run the server gives back differs from the one recorded: what the track step
    checks rather than copies."""
    wrong = [f"{name}: parameter {k} is {read.parameters.get(k)!r}, not {v!r}"
             for k, v in sent.parameters.items() if read.parameters.get(k) != str(v)]
    wrong += [f"{name}: {metric} has {read.steps.get(metric, 0)} values, not {len(values)}"
              for metric, values in sent.series.items()
              if read.steps.get(metric, 0) != len(values)]
    wrong += [f"{name}: no {tag} tag" for tag in (IMAGE_TAG, "kfbox.nodes", "kfbox.duration_s")
              if not read.tags.get(tag)]
    if read.tags.get(IMAGE_TAG) not in (None, sent.tags.get(IMAGE_TAG)):
        wrong.append(f"{name}: image digest {read.tags.get(IMAGE_TAG)}, not the built one")
    if sent.parent and read.tags.get("mlflow.parentRunId") != sent.parent:
        wrong.append(f"{name}: not under its study")
    return wrong


def file_digests(folder: Path) -> dict[str, str]:
    """Each file under `folder` (its path relative to it) → its sha256, in path order."""
    return {path.relative_to(folder).as_posix(): file_sha256(path)
            for path in sorted(p for p in folder.rglob("*") if p.is_file())}


def tree_sha256(folder: Path) -> str:
    """One digest of a folder's files: each relative path and its bytes' sha256, in order."""
    digest = hashlib.sha256()
    for name, sha256 in file_digests(folder).items():
        digest.update(f"{name}\0{sha256}\n".encode())
    return digest.hexdigest()


def serve_step(journey: Journey) -> dict[str, Any]:
    """Serve the registered version of the best trial's model; its v1 and v2 answers must be
    the model's evaluated locally on held-out data and meet the scenario's checks, and its
    lineage from the data to the endpoint is checked link by link."""
    if journey.image is None or journey.tuned is None or journey.registered is None:
        raise JourneyCheckFailed("no registered model: the track step did not succeed")
    scenario = journey.scenario
    # The version as the registry has it now, and its files as the store has them now.
    version = journey.platform.tracking.version(journey.registered.name,
                                                journey.registered.version)
    files = tree_sha256(fetch_model(journey, version.model_key, fresh=True))
    if files != version.tags.get(FILES_TAG):
        raise StepFailure(f"model {version.name} version {version.version}: its files at "
                          f"{version.model_key} changed since it was registered (sha256 "
                          f"{files[:12]} now, {str(version.tags.get(FILES_TAG))[:12]} then); "
                          "register the model again")
    journey.gpu_check("the model server", journey.gpus)
    serving = journey.platform.serving
    answers.preload_client()  # while the model server starts
    started = time.monotonic()
    try:
        endpoint = journey.endpoint = serving.deploy(
            ServeRequest(
                name=MODEL_SERVER,
                image=journey.image.reference,
                command=list(scenario.serve.command),
                model_name=scenario.serve.model_name,
                model_key=version.model_key,
                gpus=journey.gpus,
                model_version=version.version,
            )
        )
        ready_s = time.monotonic() - started
        judged = _judge_answers(journey, endpoint, version.model_key, started, SERVE_CHECKS)
        return {**judged, "ready_s": round(ready_s, 3),
                "lineage": _lineage(journey, version, files, serving.logs(MODEL_SERVER))}
    finally:
        journey.keep_log("serve.log", serving.logs(MODEL_SERVER))


def _lineage(journey: Journey, version: ModelVersion, files: str,
             server_log: str) -> dict[str, Any]:
    """The served model's chain, data → notebook → image → run → model version → endpoint,
    each link checked against what the one before it says (serve.lineage)."""
    assert journey.image is not None and journey.endpoint is not None
    assert journey.tuned is not None
    scenario = journey.scenario
    run = journey.platform.tracking.read(version.run_id)
    reported = parse_metrics(server_log).get("model_version")
    reference = scenario.reference_module()
    data = _arrays_sha256(*reference.dataset()) if hasattr(reference, "dataset") else ""
    best_run = journey.tracked.get(journey.tuned.best.name)
    links = [
        (bool(data), f"data: sha256 {data[:12]} of the scenario's dataset()" if data else
         "data: the scenario's reference.py has no dataset() to digest"),
        (run.tags.get(IMAGE_TAG) == journey.image.digest,
         f"image: the run's image digest {run.tags.get(IMAGE_TAG)} "
         + ("is" if run.tags.get(IMAGE_TAG) == journey.image.digest else "is not")
         + f" the pushed image's {journey.image.digest}"),
        (version.run_id == best_run,
         f"run: version {version.version} was made from run {version.run_id}"
         + (", the best trial's" if version.run_id == best_run else
            f", not the best trial's {best_run}")),
        (version.tags.get(FILES_TAG) == files,
         f"model version: the served files' sha256 {files[:12]} is the registered version's"),
        (reported is not None and f"{reported:g}" == version.version,
         f"endpoint: the model server reports model_version={reported:g} (registered: "
         f"{version.version})" if reported is not None else
         "endpoint: the model server did not report a model_version=N line"),
    ]
    for passed, detail in links:
        journey.check("serve.lineage", passed, detail)
    return {
        "scenario": {"name": scenario.name, "variant": scenario.variant},
        "data": {"sha256": data},
        "notebook": {"file": scenario.notebook,
                     "sha256": file_sha256(scenario.path(scenario.notebook))},
        "image": {"reference": journey.image.reference, "digest": journey.image.digest},
        "run": {"id": run.id, "name": run.name, "command": list(scenario.train.command),
                "parameters": run.parameters, "metrics": run.metrics, "url": run.url},
        "model_version": {"name": version.name, "version": version.version,
                          "alias": MODEL_ALIAS, "model_key": version.model_key,
                          "files_sha256": files},
        "endpoint": {"url": journey.endpoint.url, "model": journey.endpoint.model_name,
                     "model_version": version.version},
    }


def _arrays_sha256(*arrays: Any) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(array.tobytes())
    return digest.hexdigest()


def fetch_model(journey: Journey, model_key: str, *, fresh: bool = False) -> Path:
    """The model at `model_key`, copied out of the store into the journey folder once: the
    steps that read it again (its digests, then its answers evaluated locally) reuse the copy.
    `fresh` copies it again, as the store holds it now (a check that its files did not change),
    and later readers reuse that copy."""
    folder = journey.run_dir / "models" / model_key.replace("/", "-")
    fetched = folder / PurePosixPath(model_key).name
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    elif fetched.exists():
        return fetched
    return journey.platform.artifacts.fetch(model_key, folder)


@dataclass(frozen=True)
class AnswerChecks:
    """The requirements a served model's answers are recorded against."""

    metadata: str | None
    same_answers: str
    quality: str


SERVE_CHECKS = AnswerChecks("serve.metadata", "serve.same-answers", "serve.quality")
PIPELINE_SERVE_CHECKS = AnswerChecks(None, "pipeline.serves", "pipeline.serves")


def _judge_answers(
    journey: Journey, endpoint: Endpoint, model_key: str, started: float, ids: AnswerChecks
) -> dict[str, Any]:
    serve = journey.scenario.serve
    declared = answers.metadata(endpoint)
    if ids.metadata:
        journey.check(
            ids.metadata,
            declared.declared,
            f"declares inputs {[i.get('name') for i in declared.inputs]} and outputs "
            f"{[o.get('name') for o in declared.outputs]}" if declared.declared else
            declared.error or "the model declares no inputs or outputs",
        )
    reference = journey.scenario.reference_module()
    x, truth = reference.held_out()
    local = list(reference.predict(fetch_model(journey, model_key), x))
    asked = time.monotonic()
    served = {"v1": answers.ask("v1", endpoint, x, declared)}
    first_prediction_s = time.monotonic() - started  # from the server's start
    first_answer_s = time.monotonic() - asked  # the first request alone: the server's own time
    served["v2"] = answers.ask("v2", endpoint, x, declared)
    for protocol, said in served.items():
        seen = answers.compare(said, local, serve.answers, serve.tolerance or 0.0)
        how = "equal" if serve.answers == "labels" else f"within {serve.tolerance:g}"
        journey.check(
            ids.same_answers,
            seen.differ == 0,
            f"{protocol}: all {len(local)} answers {how} the local model's"
            + (f" (largest difference {seen.largest:.3g})" if serve.answers == "numbers" else "")
            if seen.differ == 0 else
            f"{protocol}: {seen.differ} of {len(local)} served answers differ from the model "
            "evaluated locally" + (f" (largest difference {seen.largest:.3g} > "
                                   f"{serve.tolerance:g})" if serve.answers == "numbers" else ""),
        )
    scores = answers.score(serve.answers, truth, served["v2"])
    if hasattr(reference, "score"):  # a scenario's own measures, beside the harness's
        scores.update(reference.score(truth, served["v2"]))
    journey.meets(ids.quality, journey.scenario.checks.serve, scores, "served model")
    return {**scores, "samples": len(local), "protocols": sorted(served), "model_key": model_key,
            "first_prediction_s": round(first_prediction_s, 3),
            "first_answer_s": round(first_answer_s, 3)}


def pipeline_step(journey: Journey) -> dict[str, Any]:
    """The journey as one KFP pipeline over the built image, compiled once and run on the
    sandbox; its gated model is then served as the serve step serves the tuned one."""
    if journey.image is None:
        raise JourneyCheckFailed("no image: the build step did not run")
    scenario = journey.scenario
    compiled = compile_journey(scenario, journey.image.reference,
                               journey.logs_dir / "pipeline" / PIPELINE_FILE)
    journey.check("pipeline.compiles", True,
                  f"compiled to KFP's pipeline spec in {compiled.compile_s:.2f} s: "
                  f"{PIPELINE_FILE}, sha256 {compiled.sha256}")
    store_key = f"{journey.run_id}/pipeline"
    result = journey.platform.pipelines.run(
        PipelineRun(name=f"{journey.run_id}-pipeline", package=compiled.path,
                    store_key=store_key, timeout_s=scenario.train.timeout_s * 3))
    journey.keep_log("pipeline/run.log", result.logs)
    tasks = [{"task": t.name, "state": t.state, "duration_s": t.duration_s,
              "stage": stage_of(t.name)} for t in result.tasks]
    metrics: dict[str, Any] = {"sha256": compiled.sha256,
                               "compile_s": round(compiled.compile_s, 3),
                               "pipeline_s": round(result.duration_s, 2), "tasks": tasks,
                               "task_outputs": result.task_outputs}
    journey.metrics["pipeline"] = metrics  # kept even when a check below fails the step
    trials = sum(t.name == "trial" for t in result.tasks)
    journey.check(
        "pipeline.runs", result.succeeded,
        f"{len(result.tasks)} tasks succeeded ({trials} trials, "
        f"{scenario.tune.parallel_trials} at a time), "
        + ("each with no network" if result.task_network == "none"
           else f"each on {result.task_network}")
        if result.succeeded else result.error or "the pipeline ran no task")
    picked = json.loads(result.outputs.get("picked", "{}"))
    model_key = result.outputs.get("model", "")
    saved = journey.platform.artifacts.list(model_key) if model_key else []
    journey.check("pipeline.model", bool(saved),
                  f"{len(saved)} file(s) in the model store under {model_key}" if saved
                  else result.outputs_missing or "the pipeline returned no model")
    journey.meets("pipeline.model", scenario.checks.tune, picked.get("metrics", {}),
                  "pipeline's best trial")
    if saved:  # what the pipeline left, as a certificate can name it
        model_dir = fetch_model(journey, model_key)
        metrics["artifacts"] = file_digests(model_dir)
    metrics.update({"best_args": picked.get("args"),
                    f"best_{scenario.tune.objective}":
                        picked.get("metrics", {}).get(scenario.tune.objective)})
    serving = journey.platform.serving
    started = time.monotonic()
    try:
        endpoint = serving.deploy(ServeRequest(
            name=PIPELINE_MODEL_SERVER, image=journey.image.reference,
            command=list(scenario.serve.command), model_name=scenario.serve.model_name,
            model_key=model_key, gpus=journey.gpus))
        metrics.update(_judge_answers(journey, endpoint, model_key, started,
                                      PIPELINE_SERVE_CHECKS))
    finally:
        journey.keep_log("pipeline/serve.log", serving.logs(PIPELINE_MODEL_SERVER))
        serving.delete(PIPELINE_MODEL_SERVER)
    return metrics


STEP_FUNCTIONS: dict[str, Callable[[Journey], dict[str, Any]]] = {
    "notebook": notebook_step,
    "build": build_step,
    "train": train_step,
    "tune": tune_step,
    "track": track_step,
    "serve": serve_step,
    "pipeline": pipeline_step,
}
assert tuple(STEP_FUNCTIONS) == STEPS, "a step without a body, or a body without a step"


def judge_conditions(
    conditions: list[Condition], metrics: dict[str, float], what: str
) -> list[tuple[bool, str]]:
    """(passed, detail) for each condition on `metrics`, as the certificate's evidence reads:
    a metric `what` never reported fails, naming the condition that needed it."""
    judged = []
    for condition in conditions:
        value = metrics.get(condition.metric)
        if value is None:
            judged.append((False, f"{what}: no {condition.metric} reported "
                                  f"(the scenario needs {condition})"))
            continue
        verb = "meets" if condition.holds(value) else "misses"
        judged.append((condition.holds(value),
                       f"{what}: {condition.metric}={value:.4g} {verb} {condition}"))
    return judged
