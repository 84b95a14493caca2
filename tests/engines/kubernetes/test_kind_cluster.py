"""kind config, nvkind GPU steps (after NVIDIA/nvkind at 24c190e), the registry and the cluster
lifecycle, checked field by field and as commands (a recording runner stands in for
kind/kubectl/docker). Only on a real host: kind actually creating nodes, the NVIDIA toolkit
installing inside them, GPUs appearing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kfbox.engines.kubernetes import jupyter, kindconfig, nvkind, registry
from kfbox.engines.kubernetes.cluster import KindCluster
from kfbox.engines.kubernetes.hostdocker import HostDocker
from kfbox.engines.kubernetes.tools import Tools, run
from kfbox.engines.kubernetes.workspace import namespace_object, store_claim
from kfbox.host.config import SandboxSpec
from kfbox.host.errors import KfboxError, PreflightError
from kfbox.host.statefiles import StateFolder


def spec(**kw) -> SandboxSpec:
    return SandboxSpec(name="box", engine="kind", **kw)


def test_kind_config_single_node_ports_on_loopback_and_registry_patch() -> None:
    config = kindconfig.kind_config(spec(), gpu=False)
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4" and config["kind"] == "Cluster"
    assert [n["role"] for n in config["nodes"]] == ["control-plane"]
    assert config["nodes"][0]["image"] == kindconfig.NODE_IMAGE  # the bundle carries it
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"
    mapping = config["nodes"][0]["extraPortMappings"][0]
    assert mapping == {"containerPort": 30888, "hostPort": 8888, "listenAddress": "127.0.0.1",
                       "protocol": "TCP"}
    assert 'config_path = "/etc/containerd/certs.d"' in config["containerdConfigPatches"][0]
    assert "extraMounts" not in config["nodes"][0]
    assert yaml.safe_load(kindconfig.render(config)) == config


def test_kind_config_gpu_mounts_follow_nvkind_on_workload_nodes() -> None:
    config = kindconfig.kind_config(spec(kubernetes={"nodes": 3}), gpu=True)
    roles = [n["role"] for n in config["nodes"]]
    assert roles == ["control-plane", "worker", "worker"]
    assert "extraMounts" not in config["nodes"][0]
    for worker in config["nodes"][1:]:
        assert worker["extraMounts"] == [{"hostPath": "/dev/null",
                                          "containerPath": "/var/run/nvidia-container-devices/all"}]
    single = kindconfig.kind_config(spec(), gpu=True)
    assert single["nodes"][0]["extraMounts"][0]["hostPath"] == "/dev/null"


def test_nvkind_host_checks_name_the_fixing_command() -> None:
    bad = nvkind.host_checks({"DefaultRuntime": "runc"},
                             "accept-nvidia-visible-devices-as-volume-mounts = false\n")
    assert [c.status for c in bad] == ["fail", "fail"]
    assert "nvidia-ctk runtime configure --runtime=docker --set-as-default --cdi.enabled" in \
        bad[0].fix
    assert "accept-nvidia-visible-devices-as-volume-mounts=true --in-place" in bad[1].fix
    good = nvkind.host_checks({"DefaultRuntime": "nvidia"},
                              "accept-nvidia-visible-devices-as-volume-mounts = true\n")
    assert [c.status for c in good] == ["pass", "pass"]
    assert nvkind.host_checks({"DefaultRuntime": "nvidia"}, None)[1].status == "fail"


def test_nvkind_node_steps_follow_the_current_recipe(runner) -> None:
    """nvkind at 24c190e: containerd configured from its file, nvidia not made the default
    (with --config-source=command the toolkit writes an invalid drop-in under containerd 2 with
    kind's version-2 config), then ModifyDeviceFiles masked unless the toolkit did it."""
    docker = HostDocker(Tools(runner=runner, which={"docker": "/usr/bin/docker"}))
    nvkind.configure_node(docker, "box-worker")
    scripts = [c[-1] for c in runner.calls]
    assert all(c[:5] == ["docker", "exec", "box-worker", "bash", "-ec"] for c in runner.calls)
    install = next(i for i, s in enumerate(scripts)
                   if s.endswith("apt-get install -y nvidia-container-toolkit"))
    configure = scripts.index(
        "nvidia-ctk runtime configure --runtime=containerd --config-source=file")
    restart = scripts.index("systemctl restart containerd")
    mask = next(i for i, s in enumerate(scripts) if "ModifyDeviceFiles" in s)
    assert install < configure < restart < mask
    assert not any("--set-as-default" in s or "--config-source=command" in s for s in scripts)
    assert scripts[mask].startswith("grep -qx 'ModifyDeviceFiles: 0' /proc/driver/nvidia/params"
                                    " || { umount -R /proc/driver/nvidia")
    assert nvkind.NVKIND_COMMIT.startswith("24c190e")
    assert nvkind.runtime_class() == {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                      "metadata": {"name": "nvidia"}, "handler": "nvidia"}


def test_kfbox_objects_validate_against_kubernetes_and_crd_schemas() -> None:
    import kubernetes_validate
    import schemas


    sandbox = jupyter.sandbox_objects("box", "example.invalid/nb:v1", "t0ken")
    core = [o for o in sandbox if o["kind"] != "Notebook"]
    for obj in (nvkind.runtime_class(), registry.hosting_configmap(spec()),
                namespace_object("kfbox-run-1", "box"), store_claim("kfbox-run-1"), *core):
        kubernetes_validate.validate(obj, "1.32", strict=True)
    notebook = next(o for o in sandbox if o["kind"] == "Notebook")
    assert schemas.validate("kubeflow.org/v1", "notebooks", notebook) == []
    assert schemas.validate("trainer.kubeflow.org/v1alpha1", "clustertrainingruntimes",
                            nvkind.training_runtime()) == []
    pod = nvkind.training_runtime()["spec"]["template"]["spec"]["replicatedJobs"][0]
    assert pod["template"]["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"


def test_cluster_create_commands_and_registry_wiring(runner, tmp_path: Path, monkeypatch) -> None:
    runner.script = [(("kind", "get", "clusters"), 0, "other\n"),
                     (("kind", "get", "nodes"), 0, "box-control-plane\n"),
                     (("kind", "get", "kubeconfig"), 0, "apiVersion: v1\n"),
                     (("docker", "inspect", "-f", "{{.State.Running}}"), 1, "No such object"),
                     (("docker", "inspect"), 0, '{"bridge":{}}')]
    tools = Tools(runner=runner, which={t: f"/usr/bin/{t}" for t in ("kind", "docker")})
    docker = HostDocker(tools)
    s = spec()
    registry.ensure_running(docker, s)
    monkeypatch.setenv("KFBOX_HOME", str(tmp_path))
    state = StateFolder(s.name)
    cluster = KindCluster(s, tools, state)
    cluster.create(gpu=False)
    cluster.write_kubeconfig()
    registry.connect_to_kind(docker, s)
    registry.configure_node(docker, s, "box-control-plane")
    run = next(c for c in runner.calls if c[:2] == ["docker", "run"])
    assert "127.0.0.1:5000:5000" in run and "kfbox.sandbox=box" in run
    create = next(c for c in runner.calls if c[:3] == ["kind", "create", "cluster"])
    assert create[create.index("--name") + 1] == "box"
    written = yaml.safe_load(Path(create[create.index("--config") + 1]).read_text())
    assert written == kindconfig.kind_config(s, gpu=False)
    assert ["docker", "network", "connect", "kind", "box-registry"] in runner.calls
    assert runner.stdins[-1] == '[host."http://box-registry:5000"]\n'
    assert runner.calls[-1][-1] == "/etc/containerd/certs.d/localhost:5000/hosts.toml"
    assert state.file("kubeconfig").stat().st_mode & 0o077 == 0


def test_failed_create_deletes_the_half_made_cluster(runner, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KFBOX_HOME", str(tmp_path))
    runner.script = [(("kind", "get", "clusters"), 0, ""),
                     (("kind", "create"), 1, "ERROR: failed to create cluster: boom")]
    tools = Tools(runner=runner, which={"kind": "/usr/bin/kind"})
    with pytest.raises(KfboxError, match="boom"):
        KindCluster(spec(), tools, StateFolder("box")).create(gpu=False)
    assert runner.calls[-1] == ["kind", "delete", "cluster", "--name", "box"]


def test_missing_kind_names_the_install_command() -> None:
    tools = Tools(which={"kind": None})
    with pytest.raises(PreflightError) as missing:
        tools("kind", "version")
    assert "kind.sigs.k8s.io/dl" in missing.value.line()


def test_a_failing_host_command_is_one_kfbox_error_line(tmp_path: Path) -> None:
    """Outside cluster.create nothing wraps a failing call: it must still print one line."""

    script = tmp_path / "docker"
    script.write_text("#!/bin/sh\necho pulling >&2\necho 'Error: no such network: kind' >&2\n"
                      "exit 3\n")
    script.chmod(0o755)
    tools = Tools(runner=run, which={"docker": str(script)})
    with pytest.raises(KfboxError) as failed:
        tools("docker", "network", "connect", "kind", "box-registry")
    assert failed.value.line() == ("`docker network connect` failed (exit 3): "
                                   "Error: no such network: kind")
    assert failed.value.code == 3
