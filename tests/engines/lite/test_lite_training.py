"""The lite training driver's pieces that need no Docker engine: the SDK release it was written
against, and the adapter that gives every node container the sandbox's labels, model store,
limits and GPUs (a stand-in Docker client records what the adapter asks for)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import docker
import pytest
from docker.types import DeviceRequest
from kubeflow.trainer.backends.container.adapters.docker import DockerClientAdapter

from kfbox.engines.lite.training import WRITTEN_FOR_SDK, SandboxDockerAdapter
from kfbox.engines.platform import MODEL_STORE_MOUNT
from kfbox.host.config import Resources

# Tests that need no engine never read or write the user's real kfbox state.
pytestmark = pytest.mark.usefixtures("kfbox_home")


class Recorded:
    """Answers `containers.run` and `networks.create/get` with what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.containers = self.networks = self

    def run(self, **kwargs: Any) -> Any:
        self.calls.append(("run", kwargs))
        return type("Container", (), {"id": "c0ffee"})()

    def get(self, name: str) -> Any:
        raise docker.errors.NotFound(name)

    def create(self, **kwargs: Any) -> None:
        self.calls.append(("network", kwargs))


def test_the_installed_sdk_is_a_release_the_driver_was_written_for() -> None:
    assert importlib.metadata.version("kubeflow") in WRITTEN_FOR_SDK, (
        "the lite training driver replaces the SDK container backend's private _adapter: "
        "read the new release's backend and adapter, then add it to WRITTEN_FOR_SDK")


def test_the_adapter_sets_what_the_sdks_own_constructor_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(docker, "from_env", lambda: "a client")
    sdk_sets = set(vars(DockerClientAdapter(None)))
    ours = SandboxDockerAdapter(Recorded(), {}, "store", 0, Resources())  # type: ignore[arg-type]
    assert sdk_sets <= set(vars(ours)), "the SDK's adapter gained state this driver never sets"


@pytest.mark.parametrize("gpus", [0, 1])
def test_every_node_gets_labels_the_store_limits_and_its_gpus(gpus: int) -> None:
    engine = Recorded()
    adapter = SandboxDockerAdapter(engine, {"kfbox.sandbox": "lab", "kfbox.run": "run-1"},  # type: ignore[arg-type]
                                   "kfbox-lab-models", gpus, Resources(memory="3g", cpus=1.5))
    container = adapter.create_and_start_container(
        "img", ["bash", "-lc", "torchrun ..."], "job-node-0", "job-net", {"A": "1"},
        {"trainer.kubeflow.org/step": "node-0"}, {"/tmp/w": {"bind": "/workspace"}}, "/workspace")
    assert container == "c0ffee"
    [(kind, run)] = engine.calls
    assert kind == "run"
    assert run["labels"] == {"trainer.kubeflow.org/step": "node-0", "kfbox.sandbox": "lab",
                             "kfbox.run": "run-1"}
    assert run["volumes"] == {"/tmp/w": {"bind": "/workspace"},
                              "kfbox-lab-models": {"bind": MODEL_STORE_MOUNT, "mode": "rw"}}
    assert (run["mem_limit"], run["nano_cpus"]) == ("3g", 1_500_000_000)
    assert run["network"] == "job-net" and run["environment"] == {"A": "1"}
    if gpus:
        [request] = run["device_requests"]
        assert isinstance(request, DeviceRequest) and request["Count"] == gpus
    else:
        assert "device_requests" not in run


def test_the_jobs_network_carries_the_sandbox_labels() -> None:
    engine = Recorded()
    adapter = SandboxDockerAdapter(engine, {"kfbox.sandbox": "lab"}, "store", 0, Resources())  # type: ignore[arg-type]
    adapter.create_network("job-net", {"trainer.kubeflow.org/trainjob-name": "job"})
    [(kind, created)] = engine.calls
    assert kind == "network"
    assert created["labels"] == {"trainer.kubeflow.org/trainjob-name": "job",
                                 "kfbox.sandbox": "lab"}
