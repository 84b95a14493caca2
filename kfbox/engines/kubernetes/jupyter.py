"""Notebook servers on Kubernetes: a Kubeflow `Notebook` running a notebook-server image with a
Jupyter token on, and the kind sandbox's own notebook server, which kind maps to 127.0.0.1.

Kubeflow's notebook images start `jupyter lab --ServerApp.token=""` under NB_PREFIX (kubeflow/
kubeflow v1.10.0 components/example-notebook-servers/jupyter/s6/services.d/jupyterlab/run):
authentication is left to the platform's mesh. kfbox has no mesh in front of them, so its
notebooks replace that start command with the same `jupyter lab` and a token from a Secret."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kfbox.engines.kubernetes import quantities
from kfbox.engines.kubernetes.kindconfig import JUPYTER_NODE_PORT
from kfbox.engines.kubernetes.kubeapi import KubeApi
from kfbox.engines.kubernetes.notebook_access import SERVICE_ACCOUNT, access_objects
from kfbox.engines.kubernetes.workspace import METRICS_COLLECTOR_LABEL

NOTEBOOK_API = "kubeflow.org/v1"
CONTAINER_PORT = 8888
"""The notebook controller's container port (notebook_controller.go DefaultContainerPort); its
Service, named as the Notebook, serves it on port 80."""
SERVICE_PORT = 80
JUPYTER = "jupyter"
"""Found on the image's PATH: Kubeflow's notebook images put /opt/conda/bin there (their base
Dockerfile's ENV PATH), kfbox's notebook image has it in /usr/local/bin."""
HOME = "/home/jovyan"
"""The user's home in Kubeflow's notebook images (jupyter/Dockerfile) and in kfbox's."""
TOKEN_SECRET = "kfbox-jupyter-token"
TOKEN_KEY = "token"
TOKEN_ENV = "JUPYTER_TOKEN"
NAMESPACE_ENV = "POD_NAMESPACE"
"""The pod's namespace, which a client that is not the Kubeflow SDK's needs (KServe's client
defaults to `default` outside a pod's service-account files)."""
STORE_ENV = "KFBOX_STORE"
STORE_CLAIM_ENV = "KFBOX_STORE_CLAIM"
"""Where a notebook's pod mounts its model store, and the claim's name: a workload the notebook
starts mounts the same claim (the serving tutorial's model server)."""
KUBEFLOW_IMAGE = "ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-pytorch-full:v1.10.0"
"""Kubeflow v1.10's PyTorch notebook server (one of its Jupyter web app's image options,
kubeflow/kubeflow v1.10.0 spawner_ui_config.yaml), an image a person may name for kind's sandbox
notebook: kfbox starts every notebook as this image's start script does (above), and finds
`jupyter` and the home where it puts them (JUPYTER, HOME). It has no Kubeflow SDK, so kfbox's
own notebook image is the default."""
SANDBOX_NAMESPACE = "kfbox"
SANDBOX_NOTEBOOK = "jupyter"
SANDBOX_CLAIM = "kfbox-workspace"
SANDBOX_CLAIM_SIZE = "5Gi"
NODEPORT_SERVICE = "jupyter-nodeport"
SANDBOX_LABEL = "kfbox.sandbox"


def prefix(namespace: str, name: str) -> str:
    """The base URL the notebook controller gives the server (its NB_PREFIX variable)."""
    return f"/notebook/{namespace}/{name}"


def token_secret(namespace: str, token: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": TOKEN_SECRET, "namespace": namespace},
            "stringData": {TOKEN_KEY: token}}


NOTEBOOK_CPU_REQUEST = "100m"
"""What a notebook server asks the scheduler for in CPU: it idles once its notebook ran (the
journey keeps it for reading the store), and CPU is compressible; its limit is the sandbox's."""


def notebook_resources(cpus: float, memory: str) -> dict[str, dict[str, str]]:
    """The sandbox's resources as the notebook container's limits; memory requested in full
    (it is not compressible: a pod over its request is evicted first), CPU at
    NOTEBOOK_CPU_REQUEST (or the limit, if lower)."""
    cpu_limit = quantities.cpu(cpus)
    cpu_request = cpu_limit if cpus < 0.1 else NOTEBOOK_CPU_REQUEST  # never above the limit
    return {"requests": {"cpu": cpu_request, "memory": quantities.memory(memory)},
            "limits": {"cpu": cpu_limit, "memory": quantities.memory(memory)}}


def notebook_object(namespace: str, name: str, image: str, mounts: dict[str, str],
                    resources: dict[str, dict[str, str]] | None = None,
                    service_account: str | None = None,
                    env: dict[str, str] | None = None) -> dict[str, Any]:
    """The Notebook CR: `image` started as Kubeflow's images start Jupyter, with the token of
    TOKEN_SECRET; `mounts` maps claim names to mount paths; `resources` the container's
    requests and limits (notebook_resources); `service_account` what its pod runs as (the
    namespace's `default` when None); `env` what the tutorials read besides the pod's own
    namespace (POD_NAMESPACE, from the downward API). The pod template is built with the
    kubernetes typed models."""
    args = [f"--notebook-dir={HOME}", "--ip=0.0.0.0", f"--port={CONTAINER_PORT}",
            "--no-browser", "--ServerApp.base_url=$(NB_PREFIX)",
            f"--IdentityProvider.token=$({TOKEN_ENV})", "--ServerApp.password=",
            "--ServerApp.allow_origin=*", "--ServerApp.allow_remote_access=True"]
    volumes = [(f"claim-{i}", claim, path) for i, (claim, path) in enumerate(mounts.items())]
    pod = client.V1PodSpec(
        service_account_name=service_account,
        containers=[client.V1Container(
            name=name, image=image, command=[JUPYTER, "lab"], args=args,
            env=[client.V1EnvVar(name=TOKEN_ENV, value_from=client.V1EnvVarSource(
                secret_key_ref=client.V1SecretKeySelector(name=TOKEN_SECRET, key=TOKEN_KEY))),
                 client.V1EnvVar(name=NAMESPACE_ENV, value_from=client.V1EnvVarSource(
                     field_ref=client.V1ObjectFieldSelector(field_path="metadata.namespace"))),
                 *(client.V1EnvVar(name=k, value=v) for k, v in (env or {}).items())],
            ports=[client.V1ContainerPort(name="notebook-port", container_port=CONTAINER_PORT,
                                          protocol="TCP")],
            volume_mounts=[client.V1VolumeMount(name=v, mount_path=path)
                           for v, _, path in volumes],
            resources=client.V1ResourceRequirements(**resources) if resources else None,
        )],
        volumes=[client.V1Volume(name=v, persistent_volume_claim=client.
                                 V1PersistentVolumeClaimVolumeSource(claim_name=claim))
                 for v, claim, _ in volumes],
    )
    return {
        "apiVersion": NOTEBOOK_API, "kind": "Notebook",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"spec": client.ApiClient().sanitize_for_serialization(pod)}},
    }


SANDBOX_STORE = f"{HOME}/work"
"""Where the sandbox notebook mounts its workspace claim, which is its model store too."""
SANDBOX_TUTORIALS = "work/tutorials"
"""Where kind's `up` puts the tutorials, under the server's root: on the claim, so a person's
edits outlive the pod."""


def sandbox_objects(sandbox: str, image: str, token: str,
                    env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The kind sandbox's notebook server: its namespace (labelled for Katib, so Experiments
    may run there), what its service account may do (notebook_access), its token, workspace
    claim, Notebook, and a NodePort Service on the port kind maps to 127.0.0.1:<ports.jupyter>.
    Its container gets what the tutorials read: the store's place and claim, and `env` (the
    ML runtime's image)."""
    ns = SANDBOX_NAMESPACE
    env = {STORE_ENV: SANDBOX_STORE, STORE_CLAIM_ENV: SANDBOX_CLAIM, **(env or {})}
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": ns, "labels": {SANDBOX_LABEL: sandbox,
                                             **METRICS_COLLECTOR_LABEL}}},
        *access_objects(ns),
        token_secret(ns, token),
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": SANDBOX_CLAIM, "namespace": ns},
         "spec": {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": SANDBOX_CLAIM_SIZE}}}},
        notebook_object(ns, SANDBOX_NOTEBOOK, image, {SANDBOX_CLAIM: SANDBOX_STORE},
                        service_account=SERVICE_ACCOUNT, env=env),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": NODEPORT_SERVICE, "namespace": ns},
         "spec": {"type": "NodePort",
                  # The label the notebook controller puts on the Notebook's pod.
                  "selector": {"statefulset": SANDBOX_NOTEBOOK},
                  "ports": [{"name": "http", "port": CONTAINER_PORT, "protocol": "TCP",
                             "targetPort": CONTAINER_PORT, "nodePort": JUPYTER_NODE_PORT}]}},
    ]


def ready_replicas(kube: KubeApi, namespace: str, name: str) -> int:
    status = (kube.get(NOTEBOOK_API, "Notebook", name, namespace) or {}).get("status") or {}
    return int(status.get("readyReplicas") or 0)


def sandbox_pending(kube: KubeApi) -> str | None:
    """What the sandbox notebook still waits for; None once its pod is ready."""
    if ready_replicas(kube, SANDBOX_NAMESPACE, SANDBOX_NOTEBOOK) >= 1:
        return None
    return f"notebook {SANDBOX_NAMESPACE}/{SANDBOX_NOTEBOOK}"
