"""The journey's steps judged against a stand-in platform: which requirement each check proves,
conditions in both directions, the world size, the tuning goal, and served answers compared as
labels or numbers. The platform is a stand-in (the steps' logic is under test here); the real
platforms run these steps in tests/e2e."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from kfbox.engines.platform import (
    BuiltImage,
    Endpoint,
    ModelVersion,
    NotebookResult,
    PipelineResult,
    PipelineRun,
    RecordedRun,
    StepFailure,
    TaskRun,
    TrackedRun,
    TrainJob,
    TrainResult,
    Trial,
    TuneResult,
)
from kfbox.harness import answers
from kfbox.harness import journey as steps
from kfbox.harness.journey import Journey, JourneyCheckFailed
from kfbox.scenarios.scenario import SCENARIOS_DIR, load_scenario

REFERENCE = '''
import numpy as np


def dataset():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    return x, x.sum(axis=1)


def held_out():
    return dataset()


def predict(model_dir, x):
    return [float(v) for v in x.sum(axis=1)]
'''


@dataclass
class TrackingStandIn:
    """A tracking server that keeps what it is told (the real one: tests/e2e)."""

    url: str = "http://127.0.0.1:2"
    runs: dict[str, TrackedRun] = field(default_factory=dict)
    versions: list[ModelVersion] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, run: TrackedRun) -> str:
        with self.lock:  # the track step records several runs at once
            run_id = f"run-{len(self.runs)}"
            self.runs[run_id] = run
        return run_id

    def read(self, run_id: str) -> RecordedRun:
        run = self.runs[run_id]
        tags = {**run.tags, "kfbox.duration_s": str(run.duration_s),
                **({"mlflow.parentRunId": run.parent} if run.parent else {})}
        return RecordedRun(run_id, run.name, {k: str(v) for k, v in run.parameters.items()},
                           {k: v[-1] for k, v in run.series.items()},
                           {k: len(v) for k, v in run.series.items()}, tags, "FINISHED", "")

    def register(self, name: str, run_id: str, files: Path, *, tags: dict[str, str],
                 alias: str) -> ModelVersion:
        version = ModelVersion(name, str(len(self.versions) + 1), run_id,
                               f"tracking/{run_id}/model", tags, [alias])
        self.versions.append(version)
        return version

    def version(self, name: str, version: str) -> ModelVersion:
        return self.versions[int(version) - 1]


@dataclass
class StandIn:
    """Each platform operation, answering as told (`world`, `objectives`, `best`, `said`)."""

    root: Path
    world: int | None = None
    objectives: list[float | None] = field(
        default_factory=lambda: [0.91, 0.95, 0.93, 0.92, 0.90, 0.94])
    best: int = 1
    runtime_image: str = "runtime"
    pipeline_error: str = ""
    """Why the stand-in's pipeline run fails (empty: it succeeds)."""
    pipeline_outputs_missing: str = ""
    """Why the stand-in's pipeline gives back no outputs (empty: it gives them, as lite)."""
    deleted: list[str] = field(default_factory=list)
    tracking: TrackingStandIn = field(default_factory=TrackingStandIn)
    served_version: str = ""
    changed: set[str] = field(default_factory=set)
    """Store keys whose files differ from what was fetched before."""
    reports_version: bool = True
    """Whether the model server prints the version it serves."""

    @property
    def notebooks(self) -> StandIn:
        return self

    images = training = tuning = serving = artifacts = pipelines = notebooks

    def execute(self, notebook: Path, remote_dir: str, *, timeout_s: float) -> NotebookResult:
        executed = self.root / "executed.ipynb"
        executed.write_text(json.dumps({"cells": [{"outputs": [
            {"output_type": "stream", "text": ["baseline_accuracy=0.97\n", "accuracy=0.93\n"]}]}]}))
        return NotebookResult(executed, 4, 0.1)

    def fetch(self, remote_dir_or_key: str, dest: Path) -> Any:
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "train.py").write_text("print('train')\n")
        if remote_dir_or_key in self.changed:  # files changed in the store after the fact
            (dest / "train.py").write_text("print('changed')\n")
        return [dest / "train.py"] if remote_dir_or_key.startswith("kfbox-runs") else dest

    def build(self, context: Path, repository: str, *, build_args: dict) -> BuiltImage:
        return BuiltImage(f"127.0.0.1:5000/{repository}@sha256:{'a' * 64}", "sha256:aa", 0.2)

    def run(self, job: Any) -> Any:
        if isinstance(job, PipelineRun):
            assert job.package.is_file()
            states = ["SUCCESS"] * 4 + ["FAILURE" if self.pipeline_error else "SUCCESS"]
            tasks = [TaskRun(name, state, 1.0) for name, state in
                     zip(["trial", "trial", "train", "best", "gate"], states, strict=True)]
            picked = {"metrics": {"accuracy": 0.96}, "args": {"lr": "0.02"}, "trial": 1}
            if self.pipeline_outputs_missing:  # as on Kubernetes: the run, not its outputs
                return PipelineResult(True, tasks, {}, "pipeline log", 5.0,
                                      task_network="the cluster's pod network",
                                      outputs_missing=self.pipeline_outputs_missing)
            return PipelineResult(not self.pipeline_error, tasks,
                                  {"model": f"{job.store_key}/best/model",
                                   "picked": json.dumps(picked)},
                                  "pipeline log", 5.0, self.pipeline_error)
        if isinstance(job, TrainJob):
            world = self.world if self.world is not None else job.num_nodes
            logs = "".join(f"epoch={e}\nloss={1 / e}\naccuracy={0.9 + e / 100}\n"
                           for e in range(1, 4)) + f"world_size={world}\n"
            metrics = {"epoch": 3.0, "loss": 1 / 3, "accuracy": 0.93, "world_size": float(world)}
            return TrainResult(job.name, True, metrics, job.model_key, logs, 1.0)
        trials = [Trial(f"t-{i}", {"lr": str(i)}, {} if v is None else {"accuracy": v},
                        v is not None, f"tune/t-{i}", 1.0, f"trial {i} log")
                  for i, v in enumerate(self.objectives)]
        return TuneResult(trials[self.best], trials, 3.0)

    def list(self, prefix: str = "") -> list[str]:
        return [f"{prefix}/model.pt"]

    def deploy(self, request: Any) -> Endpoint:
        self.served_version = request.model_version
        return Endpoint(request.name, "http://127.0.0.1:1", request.model_name)

    def logs(self, name: str) -> str:
        said = f"model_version={self.served_version}\n" if self.reports_version else ""
        return f"model server log\n{said}"

    def delete(self, name: str) -> None:
        self.deleted.append(name)

    def gpu_count(self) -> int:
        return 0


def scenario_folder(tmp_path: Path, change=None) -> Path:
    folder = tmp_path / "digits"
    shutil.copytree(SCENARIOS_DIR / "digits", folder, ignore=shutil.ignore_patterns("__pycache__"))
    if change is not None:
        data = yaml.safe_load((folder / "scenario.yaml").read_text())
        change(data)
        (folder / "scenario.yaml").write_text(yaml.safe_dump(data))
    return folder


def make_journey(tmp_path: Path, platform: StandIn, change=None) -> Journey:
    scenario = load_scenario(scenario_folder(tmp_path, change)).for_variant("core")
    return Journey(scenario, platform, tmp_path / "run", tmp_path / "logs", "core-1")  # type: ignore[arg-type]


def run_through(journey: Journey, last: str) -> None:
    for step in steps.STEPS[: steps.STEPS.index(last) + 1]:
        journey.run(step)


def checks(journey: Journey, step: str) -> list[tuple[str, bool, str]]:
    return [(c.requirement, c.passed, c.detail) for c in journey.checks[step]]


def test_each_step_records_a_check_of_each_requirement_it_proves(tmp_path: Path) -> None:
    journey = make_journey(tmp_path, StandIn(tmp_path))
    run_through(journey, "tune")
    assert checks(journey, "notebook") == [
        ("notebook.executes", True, "4 cells ran; it wrote train.py"),
        ("notebook.baseline", True, "notebook: baseline_accuracy=0.97 meets "
                                    "baseline_accuracy >= 0.93"),
        # The torch prototype the notebook trains in its own kernel.
        ("notebook.baseline", True, "notebook: accuracy=0.93 meets accuracy >= 0.9")]
    assert [c[0] for c in checks(journey, "build")] == ["build.pushed"]
    assert checks(journey, "train")[0] == ("train.process-group", True,
                                           "world_size=2 for 2 node(s)")
    assert [c[0] for c in checks(journey, "train")] == [
        "train.process-group", "train.model", "train.model"]
    assert journey.curve["loss"] == [1.0, 0.5, 1 / 3]
    assert checks(journey, "tune")[1] == ("tune.best", True,
                                          "best trial t-1: accuracy=0.95 (maximize)")
    assert [t.best for t in journey.trials] == [False, True, False, False, False, False]
    assert (tmp_path / "logs" / "train.log").read_text().endswith("world_size=2\n")
    assert (tmp_path / "logs" / "tune" / "t-0.log").read_text() == "trial 0 log"


def test_nodes_that_do_not_form_one_process_group_fail(tmp_path: Path) -> None:
    journey = make_journey(tmp_path, StandIn(tmp_path, world=1))
    with pytest.raises(JourneyCheckFailed, match=r"world_size=1 for 2 node\(s\)"):
        run_through(journey, "train")


def test_a_minimizing_objective_is_judged_at_most_and_its_best_is_the_lowest(
    tmp_path: Path,
) -> None:
    def minimize(data: dict) -> None:
        data["tune"]["goal"] = "minimize"
        data["checks"]["tune"] = {"metric": "accuracy", "at_most": 0.92}

    low_is_best = StandIn(tmp_path, objectives=[0.91, 0.95, 0.93, 0.92, 0.96, 0.94], best=0)
    journey = make_journey(tmp_path, low_is_best, minimize)
    run_through(journey, "tune")
    assert checks(journey, "tune")[-1] == (
        "tune.best", True, "best trial: accuracy=0.91 meets accuracy <= 0.92")

    wrong_best = StandIn(tmp_path, objectives=[0.91, 0.95, 0.93, 0.92, 0.96, 0.94], best=1)
    journey = make_journey(tmp_path / "again", wrong_best, minimize)
    with pytest.raises(JourneyCheckFailed, match=r"another reached 0.91 \(minimize\)"):
        run_through(journey, "tune")


def test_a_trial_without_the_objective_fails_every_trial(tmp_path: Path) -> None:
    journey = make_journey(
        tmp_path, StandIn(tmp_path, objectives=[0.91, None, 0.95, 0.9, 0.9, 0.9], best=2))
    with pytest.raises(JourneyCheckFailed, match="none reported accuracy: t-1"):
        run_through(journey, "tune")


def test_a_condition_missed_names_the_value_and_the_bar(tmp_path: Path) -> None:
    journey = make_journey(tmp_path, StandIn(tmp_path), lambda d: d["checks"].update(
        train={"metric": "accuracy", "at_least": 0.99}))
    with pytest.raises(JourneyCheckFailed, match=r"trained model: accuracy=0.93 misses "
                                                 r"accuracy >= 0.99"):
        run_through(journey, "train")


def numbers_scenario(data: dict) -> None:
    data["serve"].update(answers="numbers", tolerance=0.01)
    data["checks"]["serve"] = {"metric": "rmse", "at_most": 0.1}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the stand-in model server answers and declares (set per test)."""
    said: dict[str, Any] = {"offset": 0.0, "declared": answers.Metadata(
        [{"name": "features", "datatype": "FP32", "shape": [-1, 3]}],
        [{"name": "target", "datatype": "FP32", "shape": [-1]}])}
    asked: list[dict[str, Any]] = []

    def ask(protocol: str, endpoint: Endpoint, x: np.ndarray, declared: Any) -> list[float]:
        asked.append({"protocol": protocol, "declared": declared})
        return [float(v) + said["offset"] for v in x.sum(axis=1)]

    monkeypatch.setattr(answers, "ask", ask)
    monkeypatch.setattr(answers, "metadata", lambda endpoint: said["declared"])
    said["asked"] = asked
    return said


def serve_journey(tmp_path: Path) -> Journey:
    journey = make_journey(tmp_path, StandIn(tmp_path), numbers_scenario)
    (journey.scenario.root / "reference.py").write_text(REFERENCE)
    run_through(journey, "track")
    return journey


def test_numbers_within_the_tolerance_are_the_same_answers(tmp_path: Path, served) -> None:
    served["offset"] = 0.004
    journey = serve_journey(tmp_path)
    journey.run("serve")
    same = [c for c in checks(journey, "serve") if c[0] == "serve.same-answers"]
    assert same == [("serve.same-answers", True, f"{p}: all 4 answers within 0.01 the local "
                                                 "model's (largest difference 0.004)")
                    for p in ("v1", "v2")]
    assert journey.metrics["serve"]["rmse"] == pytest.approx(0.004)
    assert journey.metrics["serve"]["r2"] > 0.99
    assert (tmp_path / "logs" / "serve.log").read_text().startswith("model server log")


def test_numbers_beyond_the_tolerance_fail_with_the_largest_difference(
    tmp_path: Path, served
) -> None:
    served["offset"] = 0.05
    journey = serve_journey(tmp_path)
    with pytest.raises(JourneyCheckFailed, match=r"v1: 4 of 4 served answers differ .* "
                                                 r"\(largest difference 0.05 > 0.01\)"):
        journey.run("serve")
    assert (tmp_path / "logs" / "serve.log").is_file()  # kept on failure too


def test_undeclared_metadata_only_warns_and_the_request_falls_back(tmp_path: Path, served) -> None:
    served["declared"] = answers.Metadata(error="GET http://127.0.0.1:1/v2/models/digits: 404")
    journey = serve_journey(tmp_path)
    journey.run("serve")  # a SHOULD: recorded, not raised
    assert checks(journey, "serve")[0] == (
        "serve.metadata", False, "GET http://127.0.0.1:1/v2/models/digits: 404")


def test_the_track_step_records_every_run_reads_it_back_and_registers_the_best(
    tmp_path: Path,
) -> None:
    platform = StandIn(tmp_path)
    journey = make_journey(tmp_path, platform)
    run_through(journey, "track")
    tracked = platform.tracking.runs
    runs = {r.name: r for r in tracked.values()}
    assert sorted(runs) == ["core-1-train", "core-1-tune", *(f"t-{i}" for i in range(6))]
    train, trials = runs["core-1-train"], [runs[f"t-{i}"] for i in range(6)]
    assert train.series["accuracy"] == [0.91, 0.92, 0.93] and train.tags["kfbox.nodes"] == "2"
    assert all(t.parent == journey.tracked["study"] for t in trials)
    assert trials[1].parameters["lr"] == "1" and train.tags["kfbox.image_digest"] == "sha256:aa"
    assert [c[:2] for c in checks(journey, "track")] == [
        ("track.runs", True), ("track.registered", True)]
    [version] = platform.tracking.versions
    assert (version.run_id, version.aliases) == (journey.tracked["t-1"], ["champion"])
    assert journey.metrics["track"]["runs"] == 8


def test_a_run_the_server_gives_back_otherwise_fails_naming_what_differs(
    tmp_path: Path, monkeypatch
) -> None:
    platform = StandIn(tmp_path)
    journey = make_journey(tmp_path, platform)
    read = platform.tracking.read

    def forgetful(run_id: str) -> RecordedRun:
        run = read(run_id)
        run.parameters.pop("lr", None)
        return run

    monkeypatch.setattr(platform.tracking, "read", forgetful)
    with pytest.raises(JourneyCheckFailed,
                       match=r"core-1-train: parameter lr is None, not '0\.01'"):
        run_through(journey, "track")


def test_serving_refuses_a_version_whose_files_changed_since_registration(
    tmp_path: Path,
) -> None:
    platform = StandIn(tmp_path)
    journey = make_journey(tmp_path, platform)
    run_through(journey, "track")
    platform.changed.add(platform.tracking.versions[0].model_key)
    with pytest.raises(StepFailure, match=r"^model digits version 1: its files at tracking/\S+ "
                                          r"changed since it was registered .* register the "
                                          r"model again$"):
        journey.run("serve")
    assert platform.served_version == ""  # refused before anything was deployed


def test_the_lineage_is_checked_link_by_link(tmp_path: Path, served) -> None:
    journey = serve_journey(tmp_path)
    journey.run("serve")
    links = [c[2].split(":")[0] for c in checks(journey, "serve") if c[0] == "serve.lineage"]
    assert links == ["data", "image", "run", "model version", "endpoint"]
    lineage = journey.metrics["serve"]["lineage"]
    assert lineage["run"]["id"] == journey.tracked["t-1"]
    assert lineage["model_version"]["version"] == "1" and lineage["endpoint"]["model_version"]


def test_a_model_server_that_does_not_report_its_version_fails_the_lineage(
    tmp_path: Path, served
) -> None:
    journey = serve_journey(tmp_path)
    journey.platform.reports_version = False  # type: ignore[attr-defined]
    with pytest.raises(JourneyCheckFailed, match="the model server did not report a "
                                                 "model_version=N line"):
        journey.run("serve")


def test_compare_and_score() -> None:
    assert answers.compare([1, 2, 3], [1, 2, 4], "labels", 0) == answers.Comparison(1, 0.0)
    assert answers.compare([1.0, 2.0], [1.0], "numbers", 0.1).differ == 2
    assert answers.score("labels", np.array([1, 2, 3, 4]), [1, 2, 3, 0]) == {"accuracy": 0.75}
    scores = answers.score("numbers", np.array([1.0, 2.0, 3.0]), [1.0, 2.0, 4.0])
    assert scores == {"rmse": round(float(np.sqrt(1 / 3)), 4), "mae": 0.3333, "r2": 0.5}


def test_the_pipeline_step_compiles_runs_and_serves_the_pipelines_model(
    tmp_path: Path, served
) -> None:
    platform = StandIn(tmp_path)
    journey = make_journey(tmp_path, platform, numbers_scenario)
    (journey.scenario.root / "reference.py").write_text(REFERENCE)
    run_through(journey, "pipeline")
    compiled = tmp_path / "logs" / "pipeline" / "pipeline.yaml"
    digest = hashlib.sha256(compiled.read_bytes()).hexdigest()
    compiles = checks(journey, "pipeline")[0]
    assert compiles[:2] == ("pipeline.compiles", True) and re.fullmatch(
        rf"compiled to KFP's pipeline spec in \d+\.\d\d s: pipeline.yaml, sha256 {digest}",
        compiles[2])
    assert checks(journey, "pipeline")[1:3] == [
        ("pipeline.runs", True, "5 tasks succeeded (2 trials, 2 at a time), each with no network"),
        ("pipeline.model", True, "1 file(s) in the model store under core-1/pipeline/best/model")]
    assert {c[0] for c in checks(journey, "pipeline")} == {
        "pipeline.compiles", "pipeline.runs", "pipeline.model", "pipeline.serves"}
    metrics = journey.metrics["pipeline"]
    assert metrics["sha256"] == digest
    assert metrics["tasks"][-1] == {"task": "gate", "state": "SUCCESS", "duration_s": 1.0,
                                    "stage": 2}
    assert metrics["best_args"] == {"lr": "0.02"}
    # The model it left in the store, each file with its digest.
    assert metrics["artifacts"] == {"train.py": hashlib.sha256(b"print('train')\n").hexdigest()}
    assert platform.deleted == [steps.PIPELINE_MODEL_SERVER]  # its model server is gone
    assert (tmp_path / "logs" / "pipeline" / "run.log").read_text() == "pipeline log"


def test_a_failed_pipeline_task_fails_the_step_in_one_line_naming_it(tmp_path: Path) -> None:
    cause = "task gate failed: RuntimeError: quality gate: accuracy=0.5 (needs at_least 0.9)"
    journey = make_journey(tmp_path, StandIn(tmp_path, pipeline_error=cause))
    run_through(journey, "build")  # the pipeline needs only the built image
    with pytest.raises(JourneyCheckFailed, match=re.escape(cause)):
        journey.run("pipeline")
    assert journey.metrics["pipeline"]["tasks"][-1]["state"] == "FAILURE"  # kept for the report
    assert (tmp_path / "logs" / "pipeline" / "run.log").is_file()


def test_outputs_a_platform_cannot_read_back_fail_the_model_check_saying_why(
        tmp_path: Path) -> None:
    """On Kubernetes the run succeeds but KFP's API gives back no outputs: the step says so
    where it looks for the model, and claims no isolation the tasks did not have."""
    why = "outputs stay in KFP"
    journey = make_journey(tmp_path, StandIn(tmp_path, pipeline_outputs_missing=why))
    run_through(journey, "build")
    with pytest.raises(JourneyCheckFailed, match=why):
        journey.run("pipeline")
    found = dict((name, (passed, detail)) for name, passed, detail in checks(journey, "pipeline"))
    assert found["pipeline.runs"] == (
        True, "5 tasks succeeded (2 trials, 2 at a time), each on the cluster's pod network")
    assert found["pipeline.model"] == (False, why)
