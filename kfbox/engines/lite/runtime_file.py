"""The training runtime file the Kubeflow SDK's container backend reads: a
ClusterTrainingRuntime-shaped YAML naming the sandbox's ML runtime image, so neither kfbox's
own jobs nor the notebook's ever fetch a runtime from the network."""

from __future__ import annotations

from pathlib import Path

import yaml

RUNTIME_NAME = "kfbox-torch"


def write_runtime(directory: Path, image: str) -> Path:
    """A ClusterTrainingRuntime-shaped file naming the sandbox image: the SDK's container
    backend reads its runtimes from here, never from the network."""
    runtime = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": RUNTIME_NAME, "labels": {"trainer.kubeflow.org/framework": "torch"}},
        "spec": {
            "mlPolicy": {"numNodes": 1, "torch": {"numProcPerNode": "auto"}},
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": "node",
                            "template": {
                                "spec": {
                                    "template": {
                                        "spec": {
                                            "containers": [{"name": "node", "image": image}],
                                        }
                                    }
                                }
                            },
                        }
                    ]
                }
            },
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{RUNTIME_NAME}.yaml"
    path.write_text(yaml.safe_dump(runtime, sort_keys=False))
    return path
