"""The run's model store in training nodes: a Trainer RuntimePatch adding the volume, its mount
and KFBOX_MODEL_DIR to the `node` container (TrainerClient option, or the Trainer API model)."""

from __future__ import annotations

from typing import Any

from kubeflow_trainer_api import models as trainer

from kfbox.sandbox.engines.kubernetes.workspace import STORE_CLAIM
from kfbox.sandbox.platform import MODEL_DIR_ENV, MODEL_STORE_MOUNT

NODE = "node"
"""The replicated job and container that run the trainer in the Trainer's runtimes."""
STORE_VOLUME = "store"
TRIAL_MANAGER = "kfbox.dev/model-store"
"""Owner of the patch in Katib trials (runtimePatches are keyed by manager)."""


def store_volume() -> dict[str, Any]:
    return {"name": STORE_VOLUME, "persistentVolumeClaim": {"claimName": STORE_CLAIM}}


def store_mount() -> dict[str, Any]:
    return {"name": STORE_VOLUME, "mountPath": MODEL_STORE_MOUNT}


def model_dir_env(model_key: str) -> dict[str, Any]:
    return {"name": MODEL_DIR_ENV, "value": f"{MODEL_STORE_MOUNT}/{model_key}"}


def trainer_options(model_key: str) -> list[Any]:
    """The TrainerClient option that mounts the store (the SDK sets its own manager)."""
    from kubeflow.trainer.options import (
        ContainerPatch,
        JobSetSpecPatch,
        JobSetTemplatePatch,
        JobSpecPatch,
        JobTemplatePatch,
        PodSpecPatch,
        PodTemplatePatch,
        ReplicatedJobPatch,
        RuntimePatch,
        TrainingRuntimeSpecPatch,
    )

    pod = PodSpecPatch(volumes=[store_volume()], containers=[ContainerPatch(
        name=NODE, volume_mounts=[store_mount()], env=[model_dir_env(model_key)])])
    job = ReplicatedJobPatch(name=NODE, template=JobTemplatePatch(
        spec=JobSpecPatch(template=PodTemplatePatch(spec=pod))))
    return [RuntimePatch(training_runtime_spec=TrainingRuntimeSpecPatch(
        template=JobSetTemplatePatch(spec=JobSetSpecPatch(replicated_jobs=[job]))))]


def runtime_patch(model_key: str) -> trainer.TrainerV1alpha1RuntimePatch:
    """The same patch as a Trainer API model, for TrainJobs kfbox does not create itself
    (Katib creates each trial's); `model_key` may hold Katib `${trialParameters.*}`."""
    pod = trainer.TrainerV1alpha1PodSpecPatch(
        volumes=[trainer.IoK8sApiCoreV1Volume.from_dict(store_volume())],
        containers=[trainer.TrainerV1alpha1ContainerPatch(
            name=NODE,
            volumeMounts=[trainer.IoK8sApiCoreV1VolumeMount.from_dict(store_mount())],
            env=[trainer.IoK8sApiCoreV1EnvVar.from_dict(model_dir_env(model_key))],
        )],
    )
    job = trainer.TrainerV1alpha1ReplicatedJobPatch(
        name=NODE, template=trainer.TrainerV1alpha1JobTemplatePatch(
            spec=trainer.TrainerV1alpha1JobSpecPatch(
                template=trainer.TrainerV1alpha1PodTemplatePatch(spec=pod))))
    return trainer.TrainerV1alpha1RuntimePatch(
        manager=TRIAL_MANAGER,
        trainingRuntimeSpec=trainer.TrainerV1alpha1TrainingRuntimeSpecPatch(
            template=trainer.TrainerV1alpha1JobSetTemplatePatch(
                spec=trainer.TrainerV1alpha1JobSetSpecPatch(replicatedJobs=[job]))))
