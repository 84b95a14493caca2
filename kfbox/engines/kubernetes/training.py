"""Training on Kubernetes: a TrainJob through the Kubeflow SDK's TrainerClient (Kubernetes
backend), each node started under torch's launcher.

The Trainer's torch plugin (kubeflow/trainer v2.3.0 pkg/runtime/framework/plugins/torch/
torch.go, EnforceMLPolicy) gives every node PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK,
PET_MASTER_ADDR and PET_MASTER_PORT: the variables torchrun reads for its arguments. A plain
`python train.py` ignores them and trains alone on every node; under torchrun the nodes form
one process group."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from kfbox.engines.kubernetes import capacity, quantities
from kfbox.engines.kubernetes.kubeapi import KubeApi, KubeError, refusal
from kfbox.engines.kubernetes.storemount import NODE, model_dir_env, trainer_options
from kfbox.engines.kubernetes.workspace import STORE_CLAIM
from kfbox.engines.metrics import parse_metrics
from kfbox.engines.platform import StepFailure, TrainJob, TrainResult, error_line

JOBSET_LABEL = "jobset.sigs.k8s.io/jobset-name"
"""JobSet's label on every Pod of a TrainJob's JobSet (named as the TrainJob)."""
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
TRAINING_RUNTIME = "torch-distributed"
"""The Trainer's stock ClusterTrainingRuntime (trainer-runtimes); the image is the job's own."""
PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")


def node_resources(gpus: int, cpus: float, memory: str) -> dict[str, str]:
    """resources_per_node for the SDK (it maps `gpu` to nvidia.com/gpu), as quantities."""
    resources = {"cpu": quantities.cpu(cpus), "memory": quantities.memory(memory)}
    if gpus:
        resources["gpu"] = str(gpus)
    return resources


def launch_command(command: list[str], gpus: int) -> list[str]:
    """The entry point under torch's launcher, one process per GPU (or one on CPU): a Python
    entry point through its own interpreter (`python -m torch.distributed.run script ...`),
    anything else as a program (`torchrun --no-python ...`)."""
    nproc = f"--nproc-per-node={max(1, gpus)}"
    if PYTHON.match(PurePosixPath(command[0]).name):
        return [command[0], "-m", "torch.distributed.run", nproc, *command[1:]]
    return ["torchrun", nproc, "--no-python", *command]


def joined(outputs: list[tuple[str, str]]) -> str:
    """Node outputs as one log, each under a `==> pod <==` header when there are several."""
    if len(outputs) == 1:
        return outputs[0][1]
    return "".join(f"==> {pod} <==\n{text}" for pod, text in outputs)


@dataclass
class KubeTraining:
    """Training through the Kubeflow SDK's TrainerClient (Kubernetes backend): a TrainJob."""

    kube: KubeApi
    namespace: str
    resources: dict[str, Any]
    """cpus and memory of each node (the sandbox spec's resources)."""
    gpu_runtime: str = TRAINING_RUNTIME
    """The ClusterTrainingRuntime of jobs that ask for GPUs."""
    poll_s: float = 2
    shared_store: bool = False
    """Refuse a step whose pods need the model store on several nodes when the claim is not
    ReadWriteMany (`existing`: someone else's nodes and storage)."""

    def require_store(self, what: str, pods: int) -> None:
        if self.shared_store:
            capacity.shared_store(self.kube, self.namespace, STORE_CLAIM, what, pods)

    def runtime(self, gpus: int) -> str:
        return self.gpu_runtime if gpus else TRAINING_RUNTIME

    def client(self) -> Any:
        from kubeflow.common.types import KubernetesBackendConfig
        from kubeflow.trainer import TrainerClient

        return TrainerClient(
            backend_config=KubernetesBackendConfig(
                namespace=self.namespace, client_configuration=self.kube.api.configuration
            )
        )

    def outputs(self, name: str, prefer: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """(pod, output) of each node Pod of TrainJob `name`, node 0 first: the log of the
        first container of `prefer` the Pod has, else the node container's; empty when the
        job is gone. (The SDK's get_job_logs reads node 0 only.)"""
        try:
            pods = self.kube.list("v1", "Pod", self.namespace, selector=f"{JOBSET_LABEL}={name}")
            pods.sort(key=lambda p: int((p["metadata"].get("labels") or {}).get(INDEX_LABEL, 0)))
            found = []
            for pod in pods:
                names = [c["name"] for c in pod["spec"]["containers"]]
                container = next((c for c in prefer if c in names), NODE)
                found.append((pod["metadata"]["name"],
                              self.kube.pod_logs(pod["metadata"]["name"], self.namespace,
                                                 container)))
            return found
        except KubeError:
            return []  # gone with its namespace: the diagnostics keep what there was

    def logs(self, name: str) -> str:
        """Every node's output of TrainJob `name` (a Katib trial's TrainJob is named after the
        trial)."""
        return joined(self.outputs(name))

    def run(self, job: TrainJob) -> TrainResult:
        from kubeflow.trainer import CustomTrainerContainer
        from kubeflow.trainer.options import Name, TrainerArgs, TrainerCommand

        capacity.require(self.kube, f"TrainJob {job.name}", job.num_nodes, self.resources)
        self.require_store(f"TrainJob {job.name}", job.num_nodes)
        trainer_client = self.client()
        started = time.monotonic()
        trainer = CustomTrainerContainer(
            image=job.image,
            num_nodes=job.num_nodes,
            resources_per_node=node_resources(job.gpus, **self.resources),
            env=model_dir_env(job.model_key),
        )
        args = [f"--{k}={v}" for k, v in job.args.items()]
        try:
            name = trainer_client.train(
                runtime=self.runtime(job.gpus),
                trainer=trainer,
                options=[
                    Name(job.name),
                    TrainerCommand(launch_command(job.command, job.gpus)),
                    TrainerArgs(args),
                    *trainer_options(),
                ],
            )
            final = trainer_client.wait_for_job_status(
                name,
                status={"Complete", "Failed"},
                timeout=int(job.timeout_s),
                polling_interval=max(1, int(self.poll_s)),
            )
        except (RuntimeError, TimeoutError, ValueError) as exc:
            raise StepFailure(f"TrainJob {job.name}: {refusal(exc)}") from exc
        outputs = self.outputs(name)
        logs = joined(outputs)
        if final.status != "Complete":
            raise StepFailure(
                f"TrainJob {job.name} {final.status.lower()}: {error_line(logs)}", logs=logs
            )
        # Metrics are node 0's: every node prints its own, and rank 0's speak for the job.
        metrics = parse_metrics(outputs[0][1]) if outputs else {}
        return TrainResult(job.name, True, metrics, job.model_key, logs,
                           time.monotonic() - started)
