"""The Critical User Journey, engine-agnostic: notebook → build → train → tune → serve.

Each step reads what earlier steps left in the Journey (the notebook's workspace is what gets
built, the built image is what trains and tunes, the best trial's model is what gets served)
and returns its metrics. A step fails by raising StepFailure (the platform could not do it)
or JourneyCheckFailed (it ran, but a threshold or a comparison did not hold).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, InferResponse, RESTConfig

from kfbox.sandbox.metrics import parse_metrics
from kfbox.sandbox.platform import (
    BuiltImage,
    Endpoint,
    Experiment,
    Platform,
    ServeRequest,
    TrainJob,
    TrainResult,
    TuneResult,
)
from kfbox.scenarios.scenario import Scenario

NOTEBOOK_TIMEOUT_S = 600


class JourneyCheckFailed(AssertionError):
    """A step ran but its result is not good enough (a threshold, a prediction mismatch)."""


@dataclass
class Journey:
    scenario: Scenario
    platform: Platform
    run_dir: Path
    run_id: str
    gpus: int = 0
    workspace: Path | None = None
    image: BuiltImage | None = None
    trained: TrainResult | None = None
    tuned: TuneResult | None = None
    endpoint: Endpoint | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)

    def inputs(self) -> dict[str, Any]:
        """What the steps so far hand on to the next: written to the diagnostics on failure."""
        return {
            "scenario": str(self.scenario.root),
            "profile": self.scenario.profile,
            "run_id": self.run_id,
            "gpus": self.gpus,
            "workspace": str(self.workspace) if self.workspace else None,
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

    def require(self, threshold: str, value: float | None, what: str) -> float:
        bar = getattr(self.scenario.thresholds, threshold)
        if value is None:
            raise JourneyCheckFailed(f"{what}: no value reported (threshold {threshold}={bar})")
        if value < bar:
            raise JourneyCheckFailed(f"{what} {value:.4f} is below {threshold}={bar}")
        return value


def notebook_step(journey: Journey) -> dict[str, Any]:
    """Run the scenario notebook in the sandbox's notebook server; fetch what it wrote."""
    scenario = journey.scenario
    remote_dir = f"kfbox-runs/{journey.run_id}"
    result = journey.platform.notebooks.execute(
        scenario.path(scenario.notebook), remote_dir, timeout_s=NOTEBOOK_TIMEOUT_S
    )
    journey.workspace = journey.run_dir / "workspace"
    fetched = {p.name for p in journey.platform.notebooks.fetch(remote_dir, journey.workspace)}
    missing = [name for name in scenario.notebook_outputs if name not in fetched]
    if missing:
        raise JourneyCheckFailed(f"the notebook did not write {', '.join(missing)}")
    baseline = notebook_metrics(result.executed).get("baseline_accuracy")
    journey.require("baseline_accuracy", baseline, "notebook baseline accuracy")
    return {
        "cells_run": result.cells_run,
        "baseline_accuracy": baseline,
        "executed_notebook": str(result.executed),
    }


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
    if journey.workspace is None:
        raise JourneyCheckFailed("no workspace: the notebook step did not run")
    context = journey.scenario.build_context(journey.workspace, journey.run_dir / "build")
    journey.image = journey.platform.images.build(
        context,
        f"kfbox/{journey.scenario.name}",
        build_args={"BASE_IMAGE": journey.platform.runtime_image},
    )
    return {
        "image": journey.image.reference,
        "digest": journey.image.digest,
        "build_s": round(journey.image.duration_s, 2),
    }


def _trial_template(journey: Journey, name: str, nodes: int, model_key: str) -> TrainJob:
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
    )


def train_step(journey: Journey) -> dict[str, Any]:
    """Train the built image on the scenario's node count; the model lands in the store."""
    if journey.image is None:
        raise JourneyCheckFailed("no image: the build step did not run")
    job = _trial_template(
        journey, f"{journey.run_id}-train", journey.scenario.train.nodes, f"{journey.run_id}/train"
    )
    journey.trained = journey.platform.training.run(job)
    accuracy = journey.require(
        "train_accuracy", journey.trained.metrics.get("accuracy"), "training accuracy"
    )
    saved = journey.platform.artifacts.list(job.model_key)
    if not saved:
        raise JourneyCheckFailed(f"training saved nothing under {job.model_key} in the model store")
    return {
        "accuracy": accuracy,
        "nodes": job.num_nodes,
        "gpus": job.gpus,
        "model_files": len(saved),
        "train_s": round(journey.trained.duration_s, 2),
    }


def tune_step(journey: Journey) -> dict[str, Any]:
    """Search the scenario's parameters; each trial is a training job of the built image."""
    if journey.image is None:
        raise JourneyCheckFailed("no image: the build step did not run")
    tune = journey.scenario.tune
    # Trials run single-node: a search explores hyperparameters, not the distributed setup
    # that the train step already proved, and parallel multi-node trials would not fit 2 cores.
    experiment = Experiment(
        name=f"{journey.run_id}-tune",
        trial=_trial_template(journey, "trial", 1, f"{journey.run_id}/tune"),
        parameters=tune.platform_parameters(),
        objective=tune.objective,
        goal=tune.goal,
        algorithm=tune.algorithm,
        max_trials=tune.max_trials,
        parallel_trials=tune.parallel_trials,
    )
    journey.tuned = journey.platform.tuning.run(experiment)
    best = journey.tuned.best
    value = journey.require(
        "tune_accuracy", best.metrics.get(tune.objective), "best trial accuracy"
    )
    return {
        "best_" + tune.objective: value,
        "best_parameters": best.parameters,
        "trials": len(journey.tuned.trials),
        "trials_succeeded": sum(t.succeeded for t in journey.tuned.trials),
        "algorithm": tune.algorithm,
        "tune_s": round(journey.tuned.duration_s, 2),
    }


def serve_step(journey: Journey) -> dict[str, Any]:
    """Serve the best trial's model; its v1 and v2 answers must equal the model evaluated
    locally on held-out data, and their accuracy must meet the threshold."""
    if journey.image is None or journey.tuned is None:
        raise JourneyCheckFailed("no tuned model: the tune step did not succeed")
    scenario = journey.scenario
    best = journey.tuned.best
    journey.endpoint = journey.platform.serving.deploy(
        ServeRequest(
            name="model",
            image=journey.image.reference,
            command=list(scenario.serve.command),
            model_name=scenario.serve.model_name,
            model_key=best.model_key,
            gpus=journey.gpus,
        )
    )
    reference = scenario.reference_module()
    x, y = reference.held_out()
    model_dir = journey.platform.artifacts.fetch(best.model_key, journey.run_dir / "model")
    local = [int(v) for v in reference.predict(model_dir, x)]
    served = {protocol: predict(protocol, journey.endpoint, x) for protocol in ("v1", "v2")}
    for protocol, answers in served.items():
        differ = sum(a != b for a, b in zip(answers, local, strict=True))
        if differ:
            raise JourneyCheckFailed(
                f"{protocol}: {differ} of {len(local)} served predictions "
                "differ from the model evaluated locally"
            )
    accuracy = round(float(np.mean(np.asarray(served["v2"]) == y)), 4)
    journey.require("serve_accuracy", accuracy, "served accuracy")
    return {
        "accuracy": accuracy,
        "samples": len(local),
        "protocols": sorted(served),
        "model_key": best.model_key,
    }


def predict(protocol: str, endpoint: Endpoint, x: np.ndarray) -> list[int]:
    """Class labels for `x` from the endpoint, asked with KServe's own REST client."""
    if protocol == "v1":
        payload: Any = {"instances": x.tolist()}
    else:
        tensor = InferInput(name="input-0", shape=list(x.shape), datatype="FP32")
        tensor.set_data_from_numpy(x.astype(np.float32))
        payload = InferRequest(model_name=endpoint.model_name, infer_inputs=[tensor])

    async def ask() -> Any:
        client = InferenceRESTClient(RESTConfig(protocol=protocol, timeout=60))
        try:
            return await client.infer(endpoint.url, payload, model_name=endpoint.model_name)
        finally:
            await client.close()

    answer = asyncio.run(ask())
    if isinstance(answer, InferResponse):
        return [int(v) for v in answer.outputs[0].as_numpy().reshape(-1)]
    return [int(v) for v in answer["predictions"]]


STEP_FUNCTIONS: dict[str, Callable[[Journey], dict[str, Any]]] = {
    "notebook": notebook_step,
    "build": build_step,
    "train": train_step,
    "tune": tune_step,
    "serve": serve_step,
}
