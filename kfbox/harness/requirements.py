"""The requirements a certificate proves: stable ids, MUST/SHOULD levels, and what each one says.

A journey step or a component test records a check against a requirement id; the verdict is
judged per requirement from those checks (`verdict.py`). Ids never change meaning: a new or
changed promise gets a new id, so certificates from different kfbox releases compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["MUST", "SHOULD"]

STEPS: tuple[str, ...] = ("notebook", "build", "train", "tune", "track", "serve", "pipeline")
"""The Critical User Journey's steps, in the order they run."""
ONLY_IN: dict[str, tuple[str, ...]] = {"pipeline": ("core",)}
"""Steps only some variants run: the journey pipeline is core's (quick keeps its journey short;
kfp.local gives a task no GPU, so the gpu journey has none)."""
COMPONENTS = "components"
"""Where the platform's own requirements are checked (the component tests, not a step)."""
NOTEBOOK_WORK = "notebook_work"
"""Where a person's own work from the notebook is checked: the tutorials the engine offers, run
in the sandbox's kernel (tests marked `notebook_work`)."""


def steps_for(variant: str) -> tuple[str, ...]:
    """The steps a variant's journey runs, in order."""
    return tuple(s for s in STEPS if variant in ONLY_IN.get(s, (variant,)))


@dataclass(frozen=True)
class Requirement:
    id: str
    level: Level
    where: str
    """The journey step that checks it (the first, when several do), or COMPONENTS; when no
    check was recorded, that step's outcome says why."""
    text: str
    gpu_only: bool = False
    """Checked by the GPU journey only."""


REQUIREMENTS: dict[str, Requirement] = {
    r.id: r
    for r in (
        Requirement("notebook.executes", "MUST", "notebook",
                    "The scenario notebook runs, every cell, in the sandbox's notebook server, "
                    "and writes the training code."),
        Requirement("notebook.baseline", "MUST", "notebook",
                    "The notebook's baseline, and its torch prototype trained in the "
                    "notebook's own kernel, meet the scenario's checks."),
        Requirement("build.pushed", "MUST", "build",
                    "The notebook's output builds into an image, pushed to the sandbox registry "
                    "and pinned by digest."),
        Requirement("train.process-group", "MUST", "train",
                    "Training runs the built image on the scenario's nodes as one process group "
                    "(the world size the script reports equals the node count)."),
        Requirement("train.model", "MUST", "train",
                    "The trained model meets the scenario's checks and is saved to the model "
                    "store."),
        Requirement("tune.every-trial", "MUST", "tune",
                    "Every trial runs the built image and reports the tuning objective."),
        Requirement("tune.best", "MUST", "tune",
                    "The best trial is the best on the objective in its goal's direction, and "
                    "meets the scenario's checks."),
        Requirement("track.runs", "MUST", "track",
                    "The training job and every trial are runs on the sandbox's tracking "
                    "server, read back with their parameters, each metric's values over time, "
                    "the image digest, the node count and the duration; the trials are grouped "
                    "under their study."),
        Requirement("track.registered", "MUST", "track",
                    "The best trial's model is a registered model version with an alias, made "
                    "from that trial's run, its files in the model store the trial's own."),
        Requirement("serve.same-answers", "MUST", "serve",
                    "The best trial's model serves over the v1 and v2 protocols, answering as "
                    "the model evaluated locally does."),
        Requirement("serve.quality", "MUST", "serve",
                    "The served answers meet the scenario's checks on held-out data."),
        Requirement("serve.lineage", "MUST", "serve",
                    "The model server serves the registered version (its files unchanged since "
                    "registration) and reports it; the certificate carries the lineage data → "
                    "notebook → image → run → model version → endpoint, each link checked."),
        Requirement("serve.metadata", "SHOULD", "serve",
                    "The model server declares its inputs and outputs (open inference protocol "
                    "model metadata), so a generic client can call it."),
        Requirement("pipeline.compiles", "MUST", "pipeline",
                    "The journey compiles to one Kubeflow Pipelines (v2) pipeline over the built "
                    "image: train, the trials in parallel, the best in the goal's direction, a "
                    "quality gate. Its sha256 is in the certificate, the file in the bundle."),
        Requirement("pipeline.runs", "MUST", "pipeline",
                    "The compiled pipeline runs to its end on the sandbox, every task a sandbox "
                    "workload with no network; a failed task is named with its cause."),
        Requirement("pipeline.model", "MUST", "pipeline",
                    "The pipeline's model is the best of its trials, meets the scenario's tuning "
                    "checks and is in the model store."),
        Requirement("pipeline.serves", "MUST", "pipeline",
                    "The pipeline's model serves over v1 and v2, answering as the model "
                    "evaluated locally does, and the answers meet the scenario's checks."),
        Requirement("gpu.workloads", "MUST", "train",
                    "Training, trials and the model server request a GPU, and the platform offers "
                    "one.", gpu_only=True),
        Requirement("platform.healthy", "MUST", COMPONENTS,
                    "Every component of the sandbox reports healthy."),
        Requirement("platform.listen-address", "MUST", COMPONENTS,
                    "Every published port listens on the address the sandbox declares (127.0.0.1 "
                    "unless the user named another) or on loopback, never beyond it."),
        Requirement("platform.notebook-access", "MUST", COMPONENTS,
                    "A person can open the notebook server, and it enforces the authentication "
                    "the engine declares (a token: refused without it)."),
        Requirement("platform.tracking-access", "MUST", COMPONENTS,
                    "The tracking server (runs and registered models) answers only with its "
                    "login: refused without it or with a wrong one, opened with the one the "
                    "engine gives."),
        Requirement("platform.registry", "MUST", COMPONENTS,
                    "The image registry that workloads pull from answers the registry API."),
        Requirement("platform.model-store", "MUST", COMPONENTS,
                    "The engine names the model store that holds the models."),
        Requirement("person.boundary", "MUST", NOTEBOOK_WORK,
                    "What the notebook starts goes through its sandbox's own boundary: the "
                    "kernel holds no socket of the host's engine, and what it may start is its "
                    "own engine's as an unprivileged user of the host (lite) or its service "
                    "account's, every escape through the API refused (Kubernetes)."),
        Requirement("person.trains", "MUST", NOTEBOOK_WORK,
                    "A person trains from a notebook cell with the Kubeflow SDK's TrainerClient, "
                    "over two nodes as one process group, and the model meets the tutorial's bar."),
        Requirement("person.tunes", "MUST", NOTEBOOK_WORK,
                    "A person tunes from a notebook cell: every trial a training job on the "
                    "sandbox, the best in the goal's direction and meeting the tutorial's bar."),
        Requirement("person.builds", "MUST", NOTEBOOK_WORK,
                    "A person builds an image from the notebook's files, pushes it to the "
                    "sandbox's registry and trains with it over two nodes, all from cells."),
        Requirement("person.serves", "MUST", NOTEBOOK_WORK,
                    "A person serves a model from a notebook cell on the sandbox and queries it "
                    "over v1 and v2 with the model's own answers, then undeploys it."),
        Requirement("person.pipelines", "MUST", NOTEBOOK_WORK,
                    "A person compiles a Kubeflow Pipelines pipeline in a notebook cell and runs "
                    "the compiled file on the sandbox (kfp.local), its parallel tasks collected "
                    "and the best kept."),
        Requirement("platform.software", "SHOULD", COMPONENTS,
                    "The platform names the versions of the software it runs (Python, torch, "
                    "KServe, the Kubeflow SDK, the notebook server, the engine)."),
    )
}  # fmt: skip


def for_step(step: str, *, gpu: bool) -> list[Requirement]:
    """The requirements a journey's step checks (the GPU ones only in the GPU journey)."""
    return [r for r in REQUIREMENTS.values() if r.where == step and (gpu or not r.gpu_only)]
