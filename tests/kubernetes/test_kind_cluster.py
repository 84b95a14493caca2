"""kind config, nvkind GPU steps and cluster lifecycle, checked field by field and as commands
(a recording runner stands in for kind/kubectl/docker). Only on a real host: kind actually
creating nodes, the NVIDIA toolkit installing inside them, GPUs appearing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kfbox.sandbox.config import SandboxSpec
from kfbox.sandbox.engines.kubernetes import kindconfig, nvkind, registry
from kfbox.sandbox.engines.kubernetes.cluster import KindCluster
from kfbox.sandbox.engines.kubernetes.engine import KubernetesEngine
from kfbox.sandbox.engines.kubernetes.tools import Tools
from kfbox.sandbox.errors import KfboxError, PreflightError, UsageError
from kfbox.sandbox.progress import quiet_reporter


def spec(**kw) -> SandboxSpec:
    return SandboxSpec(name="box", engine="kind", **kw)


def test_kind_config_single_node_ports_on_loopback_and_registry_patch() -> None:
    config = kindconfig.kind_config(spec(), gpu=False)
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4" and config["kind"] == "Cluster"
    assert [n["role"] for n in config["nodes"]] == ["control-plane"]
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"
    mapping = config["nodes"][0]["extraPortMappings"][0]
    assert mapping == {"containerPort": 30888, "hostPort": 8888, "listenAddress": "127.0.0.1",
                       "protocol": "TCP"}
    assert 'config_path = "/etc/containerd/certs.d"' in config["containerdConfigPatches"][0]
    assert "extraMounts" not in config["nodes"][0]
    assert yaml.safe_load(kindconfig.render(config)) == config


def test_kind_config_gpu_mounts_follow_nvkind_on_workload_nodes() -> None:
    config = kindconfig.kind_config(spec(nodes=3), gpu=True)
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
    assert "nvidia-ctk runtime configure --runtime=docker --set-as-default" in bad[0].fix
    assert "accept-nvidia-visible-devices-as-volume-mounts=true --in-place" in bad[1].fix
    good = nvkind.host_checks({"DefaultRuntime": "nvidia"},
                              "accept-nvidia-visible-devices-as-volume-mounts = true\n")
    assert [c.status for c in good] == ["pass", "pass"]
    assert nvkind.host_checks({"DefaultRuntime": "nvidia"}, None)[1].status == "fail"


def test_nvkind_node_steps_in_recipe_order(runner) -> None:
    nvkind.configure_node(Tools(runner=runner, which={"docker": "/usr/bin/docker"}), "box-worker")
    scripts = [c[-1] for c in runner.calls]
    assert all(c[:5] == ["docker", "exec", "box-worker", "bash", "-ec"] for c in runner.calls)
    assert scripts[0].startswith("umount -R /proc/driver/nvidia")
    install = next(i for i, s in enumerate(scripts)
                   if s.endswith("install -y --no-install-recommends nvidia-container-toolkit"))
    configure = next(i for i, s in enumerate(scripts)
                     if "nvidia-ctk runtime configure --runtime=containerd" in s)
    restart = scripts.index("systemctl restart containerd")
    assert install < configure < restart
    assert nvkind.runtime_class() == {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                      "metadata": {"name": "nvidia"}, "handler": "nvidia"}


def test_core_objects_validate_against_kubernetes_schemas() -> None:
    import kubernetes_validate

    from kfbox.sandbox.engines.kubernetes.workspace import namespace_object, store_claim

    for obj in (nvkind.runtime_class(), registry.hosting_configmap(spec()),
                namespace_object("kfbox-run-1", "box"), store_claim("kfbox-run-1")):
        kubernetes_validate.validate(obj, "1.32", strict=True)


def test_cluster_create_commands_and_registry_wiring(runner, tmp_path: Path) -> None:
    runner.script = [(("kind", "get", "clusters"), 0, "other\n"),
                     (("kind", "get", "nodes"), 0, "box-control-plane\n"),
                     (("kind", "get", "kubeconfig"), 0, "apiVersion: v1\n"),
                     (("docker", "inspect", "-f", "{{.State.Running}}"), 1, "No such object"),
                     (("docker", "inspect"), 0, '{"bridge":{}}')]
    tools = Tools(runner=runner, which={t: f"/usr/bin/{t}" for t in ("kind", "docker")})
    s = spec()
    registry.ensure_running(tools, s)
    cluster = KindCluster(s, tools, tmp_path)
    cluster.create(gpu=False)
    cluster.write_kubeconfig()
    registry.connect_to_kind(tools, s)
    registry.configure_node(tools, s, "box-control-plane")
    run = next(c for c in runner.calls if c[:2] == ["docker", "run"])
    assert "127.0.0.1:5000:5000" in run and "kfbox.sandbox=box" in run
    create = next(c for c in runner.calls if c[:3] == ["kind", "create", "cluster"])
    assert create[create.index("--name") + 1] == "box"
    written = yaml.safe_load(Path(create[create.index("--config") + 1]).read_text())
    assert written == kindconfig.kind_config(s, gpu=False)
    assert ["docker", "network", "connect", "kind", "box-registry"] in runner.calls
    assert runner.stdins[-1] == '[host."http://box-registry:5000"]\n'
    assert runner.calls[-1][-1] == "/etc/containerd/certs.d/localhost:5000/hosts.toml"
    assert (tmp_path / "kubeconfig").stat().st_mode & 0o077 == 0


def test_failed_create_deletes_the_half_made_cluster(runner, tmp_path: Path) -> None:
    runner.script = [(("kind", "get", "clusters"), 0, ""),
                     (("kind", "create"), 1, "ERROR: failed to create cluster: boom")]
    tools = Tools(runner=runner, which={"kind": "/usr/bin/kind"})
    with pytest.raises(KfboxError, match="boom"):
        KindCluster(spec(), tools, tmp_path).create(gpu=False)
    assert runner.calls[-1] == ["kind", "delete", "cluster", "--name", "box"]


def test_missing_kind_names_the_install_command() -> None:
    tools = Tools(which={"kind": None})
    with pytest.raises(PreflightError) as missing:
        tools("kind", "version")
    assert "kind.sigs.k8s.io/dl" in missing.value.line()


def test_gpu_on_without_gpu_fails_before_anything_is_created(runner, monkeypatch) -> None:
    from kfbox.sandbox.engines.kubernetes import engine as engine_module
    from kfbox.sandbox.gpu import GpuFacts

    monkeypatch.setattr(engine_module, "detect_gpus", lambda: GpuFacts())
    engine = KubernetesEngine(spec(gpu="on"), tools=Tools(runner=runner))
    with pytest.raises(PreflightError, match="no NVIDIA GPU"):
        engine.up(quiet_reporter())
    assert runner.calls == []


def test_kubeconfig_pointing_nowhere_is_one_line_exit_2(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {}}],
    }))
    engine = KubernetesEngine(SandboxSpec(name="box", engine="existing", kubeconfig=kubeconfig))
    with pytest.raises(UsageError) as nowhere:
        engine.kube()
    assert nowhere.value.exit_code == 2
    assert "127.0.0.1:9" in nowhere.value.line() and "\n" not in nowhere.value.line()


def test_a_failing_host_command_is_one_kfbox_error_line(tmp_path: Path) -> None:
    """Outside cluster.create nothing wraps a failing call: it must still print one line."""
    from kfbox.sandbox.engines.kubernetes.tools import run

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


def test_trust_on_first_use_comes_from_the_spec_not_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("KFBOX_TRUST_ON_FIRST_USE", "1")  # the old stand-in must do nothing
    assert not KubernetesEngine(spec()).store().trust_on_first_use
    assert KubernetesEngine(spec(trust_on_first_use=True)).store().trust_on_first_use


def test_repair_up_counts_its_own_registry_and_node_ports_as_owned(runner, cluster) -> None:
    """A second `up --engine kind` finds its ports held by its own registry and kind node: not
    "in use". On `existing` no host port is published, so none is checked."""
    import socket

    from kfbox.sandbox.config import Ports

    held = [socket.socket() for _ in range(2)]
    for sock in held:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
    jupyter, registry_port = (s.getsockname()[1] for s in held)
    try:
        runner.script = [
            (("docker", "ps", "-aq", "--filter", "label=kfbox.sandbox=box"), 0, "reg1\n"),
            (("docker", "ps", "-aq", "--filter", "label=io.x-k8s.kind.cluster=box"), 0, "cp1\n"),
            (("docker", "inspect", "-f"), 0,
             f'{{"5000/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{registry_port}"}}]}}\n'
             f'{{"30888/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{jupyter}"}}],'
             '"6443/tcp":[{"HostIp":"127.0.0.1","HostPort":"40001"}]}\n')]
        tools = Tools(runner=runner, which={t: f"/usr/bin/{t}" for t in ("kind", "kubectl",
                                                                          "docker")})
        ports = Ports(jupyter=jupyter, registry=registry_port)
        kind = KubernetesEngine(spec(gpu="off", ports=ports), tools=tools)
        checks = {c.name: c for c in kind.preflight()}
        assert checks["port jupyter"].status == "pass"
        assert checks["port registry"].status == "pass"
        assert ["docker", "inspect", "-f", "{{json .HostConfig.PortBindings}}", "reg1",
                "cp1"] in runner.calls

        no_docker = KubernetesEngine(spec(ports=ports), tools=Tools(which={"docker": None}))
        assert no_docker._owned_ports() == set()  # its own preflight check names the problem

        existing = KubernetesEngine(
            SandboxSpec(name="box", engine="existing", gpu="off", ports=ports),
            tools=tools, kube=cluster.kube)
        assert not [c for c in existing.preflight() if c.name.startswith("port ")]
    finally:
        for sock in held:
            sock.close()
