"""The run's model store in training nodes: a Trainer RuntimePatch adding the volume and its
mount to the `node` container (a TrainerClient option, or the Trainer API model), and
KFBOX_MODEL_DIR through the trainer's own env.

The Trainer's validating webhook refuses env in a runtime patch for the node and initializer
containers (kubeflow/trainer v2.3.0 pkg/runtime/framework/plugins/jobset/jobset.go, Validate;
failurePolicy Fail), so the patch carries volumes and mounts only."""

from __future__ import annotations

from typing import Any

from kubeflow_trainer_api import models as trainer

from kfbox.engines.kubernetes.workspace import STORE_CLAIM
from kfbox.engines.platform import MODEL_DIR_ENV, MODEL_STORE_MOUNT

NODE = "node"
"""The replicated job and container that run the trainer in the Trainer's runtimes."""
STORE_VOLUME = "store"
TRIAL_MANAGER = "kfbox.dev/model-store"
"""Owner of the patch in Katib trials (runtimePatches are keyed by a domain-prefixed manager)."""


def store_volume() -> dict[str, Any]:
    return {"name": STORE_VOLUME, "persistentVolumeClaim": {"claimName": STORE_CLAIM}}


def store_mount() -> dict[str, Any]:
    return {"name": STORE_VOLUME, "mountPath": MODEL_STORE_MOUNT}


def model_dir_env(model_key: str) -> dict[str, str]:
    """The trainer's env (TrainJob spec.trainer.env) naming where the job saves its model."""
    return {MODEL_DIR_ENV: f"{MODEL_STORE_MOUNT}/{model_key}"}


def trainer_options() -> list[Any]:
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

    pod = PodSpecPatch(volumes=[store_volume()],
                       containers=[ContainerPatch(name=NODE, volume_mounts=[store_mount()])])
    job = ReplicatedJobPatch(name=NODE, template=JobTemplatePatch(
        spec=JobSpecPatch(template=PodTemplatePatch(spec=pod))))
    return [RuntimePatch(training_runtime_spec=TrainingRuntimeSpecPatch(
        template=JobSetTemplatePatch(spec=JobSetSpecPatch(replicated_jobs=[job]))))]


def runtime_patch() -> trainer.TrainerV1alpha1RuntimePatch:
    """The same patch as a Trainer API model, for TrainJobs kfbox does not create itself
    (Katib creates each trial's)."""
    pod = trainer.TrainerV1alpha1PodSpecPatch(
        volumes=[trainer.IoK8sApiCoreV1Volume.from_dict(store_volume())],
        containers=[trainer.TrainerV1alpha1ContainerPatch(
            name=NODE,
            volumeMounts=[trainer.IoK8sApiCoreV1VolumeMount.from_dict(store_mount())],
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
