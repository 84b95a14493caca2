"""The two Kubernetes providers against the API double (kmock subclass) and a recording runner
for kind/docker: `kind` creates its cluster, registry and a notebook server a person opens at
127.0.0.1 with a token, and deletes them; `existing` installs only what the cluster lacks,
applies nothing to what it found, and deletes only its run namespaces. Also their preflight
(ports, git for kustomize, GPUs) and bad input as one line. Only on a real host: kind creating
the cluster, the notebook pod answering on the mapped port."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest
import requests
import yaml
from manifests_server import serve_dir
from pins import sha

from kfbox.engines import get_engine
from kfbox.engines.jupyter import one_cell_notebook
from kfbox.engines.kubernetes import jupyter, kindconfig
from kfbox.engines.kubernetes import kind as kind_module
from kfbox.engines.kubernetes.catalog import load_catalog, lock_data, parse_lock
from kfbox.engines.kubernetes.existing import ExistingEngine
from kfbox.engines.kubernetes.hostdocker import HostDocker
from kfbox.engines.kubernetes.kind import KindEngine
from kfbox.engines.kubernetes.kubeapi import client_from_kubeconfig
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.platform import StepFailure
from kfbox.host.config import Ports, SandboxSpec
from kfbox.host.errors import PreflightError, UsageError
from kfbox.host.gpu import GpuFacts
from kfbox.host.progress import quiet_reporter

FIXTURES = Path(__file__).parent / "fixtures"
TOOLS = {t: f"/usr/bin/{t}" for t in ("kind", "kubectl", "docker", "git")}
KIND_SCRIPT = [
    (("kind", "get", "clusters"), 0, ""),
    (("kind", "get", "kubeconfig"), 0, "apiVersion: v1\nkind: Config\n"),
    (("kind", "get", "nodes"), 0, "box-control-plane\n"),
    (("docker", "inspect", "-f", "{{.State.Running}}"), 0, "true\n"),
    (("docker", "inspect"), 0, '{"kind":{}}'),
]



def lock(base: str) -> dict:
    """widgets from a served manifest, the kind sandbox's notebook server, the registry."""
    return {"schema": 1, "components": {
        "widgets": {"version": "v1", "min_kubernetes": "1.25", "depends": [],
                    "manifests": [{"url": f"{base}/widgets.yaml",
                                   "objects_sha256": sha("widgets.yaml")}],
                    "ready": {"crds": ["widgets.example.kfbox.dev"],
                              "deployments": ["widgets-system/widgets-controller"]}},
        "gadgets": {"version": "v2", "min_kubernetes": "1.25", "depends": ["widgets"],
                    "manifests": [{"url": f"{base}/gadgets.yaml",
                                   "objects_sha256": sha("gadgets.yaml")}],
                    "ready": {"deployments": ["widgets-system/gadgets"]}},
        "jupyter": {"version": "builtin", "min_kubernetes": "1.27", "depends": [],
                    "kind_only": True, "manifests": [{"builtin": "sandbox-notebook"}],
                    "ready": {"checks": ["sandbox-notebook"]}},
        "registry": {"version": "builtin", "min_kubernetes": "1.25", "depends": [],
                     "kind_only": True, "manifests": [{"builtin": "local-registry-hosting"}]},
    }, "platforms": {"core": ["gadgets", "jupyter", "registry"]}}


def kind_spec(**kw) -> SandboxSpec:
    return SandboxSpec(**{"name": "box", "engine": "kind", "gpu": "off", **kw})


def test_each_engine_has_its_own_provider() -> None:
    assert isinstance(get_engine(kind_spec()), KindEngine)
    assert isinstance(get_engine(SandboxSpec(name="box", engine="existing")), ExistingEngine)


def own_images(engine: KindEngine, monkeypatch) -> list[tuple[str, str]]:
    """kfbox's own images as built on the host and pushed to the kind registry (tag, push),
    recorded: the pushes this host's Docker would make."""
    pushed: list[tuple[str, str]] = []
    monkeypatch.setattr(engine.docker, "component_image", lambda name, ca: f"kfbox/{name}:abc")
    monkeypatch.setattr(engine.docker, "tag", lambda image, tag: pushed.append((image, tag)))
    monkeypatch.setattr(engine.docker, "push",
                        lambda tag: tag.rpartition(":")[0] + "@sha256:" + "1" * 64)
    return pushed


def test_kind_gives_a_notebook_server_a_person_opens_with_its_token(
        kubeflow, runner, tmp_path, monkeypatch) -> None:
    """kind's `up` as a person meets it: the sandbox notebook (its pod run for real as a host
    jupyter_server at the port kind maps, hostpods.py) runs kfbox's own notebook image with the
    ML runtime named in its env, as the notebook's service account, and holds the tutorials."""
    from hostpods import ClusterNetwork, HostPods

    from kfbox.engines.jupyter import JupyterClient
    from kfbox.engines.kubernetes.engine import TUTORIALS
    from kfbox.engines.kubernetes.notebook_access import SERVICE_ACCOUNT

    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    runner.script[:] = KIND_SCRIPT
    account = f"{jupyter.SANDBOX_NAMESPACE}/{SERVICE_ACCOUNT}"
    kubeflow.double.tokens["sandbox-token"] = "system:serviceaccount:" + account.replace("/", ":")
    with serve_dir(FIXTURES) as base, ClusterNetwork().serve() as network:
        pods = HostPods(kubeflow.double, kubeflow.url, tmp_path / "pods", network,
                        {account: "sandbox-token"}).install()
        port = pods.notebook_port
        engine = KindEngine(kind_spec(ports=Ports(jupyter=port, registry=15000)),
                            tools=Tools(runner=runner, which=dict(TOOLS)),
                            catalog=parse_lock(lock(base)), kube=kubeflow.kube)
        pushed = own_images(engine, monkeypatch)
        engine.cluster.exists = lambda: True  # the recording runner lists no clusters
        try:
            status = engine.up(quiet_reporter())
            client = JupyterClient(engine.notebook_url(), engine.token())
            offered = client.fetch_dir(jupyter.SANDBOX_TUTORIALS, tmp_path / "offered")
            # A person saves an edited copy (as JupyterLab saves); a repairing `up` keeps it.
            mine = one_cell_notebook("print('mine')")
            requests.put(f"{engine.notebook_url()}/api/contents/{jupyter.SANDBOX_TUTORIALS}/"
                         "train-from-the-notebook.ipynb", timeout=30,
                         headers={"Authorization": f"token {engine.token()}"},
                         json={"type": "notebook", "format": "json", "content": mine},
                         ).raise_for_status()
            engine.offer_tutorials(quiet_reporter())
            kept = client.fetch_dir(jupyter.SANDBOX_TUTORIALS, tmp_path / "kept")
        finally:
            pods.stop()

    def code(notebook: dict) -> list[str]:
        return ["".join(c["source"]) for c in notebook["cells"]]

    url = f"http://127.0.0.1:{port}/notebook/kfbox/jupyter"
    shipped = {p.name: code(json.loads(p.read_text())) for p in TUTORIALS.glob("*.ipynb")}
    assert {p.name: code(json.loads(p.read_text())) for p in offered} == shipped
    assert {p.name: code(json.loads(p.read_text())) for p in kept} == {
        **shipped, "train-from-the-notebook.ipynb": code(mine)}
    components = {c.name: c for c in status.components}
    assert status.state == "running" and components["jupyter"].url == url
    capabilities = engine.capabilities()
    assert capabilities.notebook is not None
    assert (capabilities.notebook.url, capabilities.notebook.auth) == (url, "token")
    assert capabilities.registry == "localhost:15000"
    assert capabilities.software["notebook-image"].startswith("kfbox/jupyter")
    assert capabilities.software["kubernetes"] == "1.32"
    token = engine.token()
    assert engine.login_url("jupyter") == f"{url}/lab?token={token}"
    token_file = next((tmp_path / "home").rglob("jupyter-token"))
    assert token_file.stat().st_mode & 0o077 == 0
    secret = kubeflow.double.get("v1", "secrets", "kfbox", jupyter.TOKEN_SECRET)
    assert secret["stringData"] == {"token": token}
    # What kind maps to 127.0.0.1:<ports.jupyter> has a Service behind it, on the notebook pod.
    mapping = kindconfig.kind_config(engine.spec, gpu=False)["nodes"][0]["extraPortMappings"][0]
    service = kubeflow.double.get("v1", "services", "kfbox", jupyter.NODEPORT_SERVICE)
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["nodePort"] == mapping["containerPort"]
    assert mapping["listenAddress"] == "127.0.0.1" and mapping["hostPort"] == port
    pod = kubeflow.double.get("v1", "pods", "kfbox", "jupyter-0")
    assert all(pod["metadata"]["labels"][k] == v
               for k, v in service["spec"]["selector"].items())
    container = pod["spec"]["containers"][0]
    digest = "@sha256:" + "1" * 64
    assert container["image"] == "localhost:15000/kfbox/jupyter" + digest
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KFBOX_RUNTIME_IMAGE"] == "localhost:15000/kfbox/runtime" + digest
    assert (env["KFBOX_STORE"], env["KFBOX_STORE_CLAIM"]) == (
        jupyter.SANDBOX_STORE, jupyter.SANDBOX_CLAIM)
    assert pod["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
    assert sorted(pushed) == [("kfbox/jupyter:abc", "localhost:15000/kfbox/jupyter:abc"),
                              ("kfbox/runtime:abc", "localhost:15000/kfbox/runtime:abc")]


def test_a_notebook_that_takes_no_tutorials_fails_up_in_one_line(kubeflow, monkeypatch,
                                                                  tmp_path) -> None:
    """A sandbox notebook that refuses kfbox's token: `up` stops with one line naming the
    server's answer and where to look, not a traceback."""
    from kfbox.host.errors import KfboxError
    from tests.support.net import Refusing, http_server

    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    with http_server(Refusing) as port:
        engine = KindEngine(kind_spec(ports=Ports(jupyter=port)), kube=kubeflow.kube)
        with pytest.raises(KfboxError) as raised:
            engine.offer_tutorials(quiet_reporter())
    assert raised.value.line() == (
        f"the sandbox notebook took no tutorials: jupyter at http://127.0.0.1:{port}/notebook/"
        "kfbox/jupyter rejected the token (HTTP 403) — see `kubectl -n kfbox logs jupyter-0`, "
        "then `kfbox up` again")


def test_kind_runs_the_notebook_image_a_person_names(kubeflow, monkeypatch, tmp_path) -> None:
    """kubernetes.notebook_image, when given, is the sandbox notebook's image (nothing of
    kfbox's notebook image is built for it); the ML runtime is still named in its env."""
    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    engine = KindEngine(kind_spec(kubernetes={"notebook_image": jupyter.KUBEFLOW_IMAGE}),
                        kube=kubeflow.kube)
    pushed = own_images(engine, monkeypatch)
    notebook = next(o for o in engine.builtins()["sandbox-notebook"]()
                    if o["kind"] == "Notebook")
    assert notebook["spec"]["template"]["spec"]["containers"][0]["image"] == \
        jupyter.KUBEFLOW_IMAGE
    assert [repository for _, repository in pushed] == ["localhost:5000/kfbox/runtime:abc"]


def test_existing_never_touches_what_it_did_not_create(kubeflow, tmp_path, monkeypatch) -> None:
    """widgets is already in the cluster (someone else's): kfbox waits for it and applies
    nothing to it; gadgets is missing: kfbox installs it. `down` deletes its run namespaces
    only; kind-only components (the notebook server, the registry) are never installed."""
    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    for doc in yaml.safe_load_all((FIXTURES / "widgets.yaml").read_text()):
        plural = {"Namespace": "namespaces", "CustomResourceDefinition":
                  "customresourcedefinitions", "Deployment": "deployments",
                  "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
                  "Service": "services"}
        kubeflow.double.create(doc["apiVersion"], plural[doc["kind"]], doc)
    kubeflow.double.set_status("apiextensions.k8s.io/v1", "customresourcedefinitions", None,
                               "widgets.example.kfbox.dev",
                               {"conditions": [{"type": "Established", "status": "True"}]})
    kubeflow.double.set_status("apps/v1", "deployments", "widgets-system", "widgets-controller",
                               {"conditions": [{"type": "Available", "status": "True"}]})
    kubeflow.double.declare("example.kfbox.dev/v1", "widgets", "Widget", namespaced=True)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}")
    with serve_dir(FIXTURES) as base:
        engine = ExistingEngine(SandboxSpec(name="box", engine="existing", gpu="off",
                                            kubernetes={"kubeconfig": kubeconfig}),
                                catalog=parse_lock(lock(base)), kube=kubeflow.kube)
        engine.up(quiet_reporter())
    written = [r.url.path for r in kubeflow.double.log if r.method in ("PATCH", "POST", "PUT")]
    assert not [p for p in written if "widgets-controller" in p or "widgets.example" in p]
    assert any(p.endswith("/deployments/gadgets") for p in written)
    assert not [p for p in written if "/notebooks" in p or "local-registry" in p]
    assert engine.recorded()["found"] == ["widgets"]
    assert engine.recorded()["installed"] == ["gadgets"]
    assert engine.capabilities().notebook is None

    kubeflow.kube.apply({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": "kfbox-run-1", "labels": {"kfbox.run": "box"}}})
    assert engine.down(quiet_reporter()) == []
    assert kubeflow.double.get("v1", "namespaces", None, "kfbox-run-1") is None
    assert kubeflow.double.get("v1", "namespaces", None, "widgets-system") is not None
    assert kubeflow.double.get("apps/v1", "deployments", "widgets-system", "gadgets")


def test_preflight_checks_git_where_kustomize_renders_remote_bases(tmp_path,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    engine = KindEngine(kind_spec(), tools=Tools(which={**TOOLS, "git": None}))
    checks = {c.name: c for c in engine.git_check()}
    assert checks["git"].status == "fail"
    assert "apt-get install -y git" in checks["git"].fix
    kustomize_free = parse_lock(lock("http://127.0.0.1:9"))
    engine = KindEngine(kind_spec(), tools=Tools(which={**TOOLS, "git": None}),
                        catalog=kustomize_free)
    assert engine.git_check() == []
    # From a bundle, its lock pins every target and the bundle holds each: no git needed.
    bundle = tmp_path / "bundle"
    (bundle / "manifests").mkdir(parents=True)
    pinned = lock_data(load_catalog(), {})
    for comp in pinned["components"].values():
        for manifest in comp["manifests"]:
            if "kustomize" in manifest:
                digest = hashlib.sha256(manifest["kustomize"].encode()).hexdigest()
                manifest["objects_sha256"] = digest
                (bundle / "manifests" / f"{digest}.yaml").write_text("")
    (bundle / "components.lock.yaml").write_text(yaml.safe_dump(pinned))
    engine = KindEngine(kind_spec(from_bundle=bundle), tools=Tools(which={**TOOLS, "git": None}))
    assert engine.git_check() == []


def test_repair_up_counts_its_own_registry_and_node_ports_as_owned(runner, cluster) -> None:
    """A second `up --engine kind` finds its ports held by its own registry and kind node: not
    "in use". On `existing` no host port is published, so none is checked."""
    held = [socket.socket() for _ in range(2)]
    for sock in held:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
    jupyter_port, registry_port = (s.getsockname()[1] for s in held)
    try:
        runner.script = [
            (("docker", "ps", "-aq", "--filter", "label=kfbox.sandbox=box"), 0, "reg1\n"),
            (("docker", "ps", "-aq", "--filter", "label=io.x-k8s.kind.cluster=box"), 0, "cp1\n"),
            (("docker", "inspect", "-f"), 0,
             f'{{"5000/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{registry_port}"}}]}}\n'
             f'{{"30888/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{jupyter_port}"}}],'
             '"6443/tcp":[{"HostIp":"127.0.0.1","HostPort":"40001"}]}\n')]
        tools = Tools(runner=runner, which=dict(TOOLS))
        ports = Ports(jupyter=jupyter_port, registry=registry_port)
        checks = {c.name: c for c in KindEngine(kind_spec(ports=ports), tools=tools).preflight()}
        assert checks["port jupyter"].status == "pass"
        assert checks["port registry"].status == "pass"
        assert ["docker", "inspect", "-f", "{{json .HostConfig.PortBindings}}", "reg1",
                "cp1"] in runner.calls

        no_docker = KindEngine(kind_spec(ports=ports), tools=Tools(which={"docker": None}))
        assert no_docker.owned_ports() == set()  # its own preflight check names the problem

        existing = ExistingEngine(
            SandboxSpec(name="box", engine="existing", gpu="off", ports=ports),
            tools=tools, kube=cluster.kube)
        assert not [c for c in existing.preflight() if c.name.startswith("port ")]
    finally:
        for sock in held:
            sock.close()


def test_gpu_on_without_gpu_fails_before_anything_is_created(runner, monkeypatch,
                                                             cluster) -> None:

    monkeypatch.setattr(kind_module, "detect_gpus", lambda: GpuFacts())
    with pytest.raises(PreflightError, match="no NVIDIA GPU"):
        KindEngine(kind_spec(gpu="on"), tools=Tools(runner=runner)).up(quiet_reporter())
    assert runner.calls == []
    existing = ExistingEngine(SandboxSpec(name="box", engine="existing", gpu="on"),
                              kube=cluster.kube)
    with pytest.raises(PreflightError, match="no node of the cluster advertises"):
        existing.up(quiet_reporter())


def test_existing_without_a_cluster_is_one_line_exit_2(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--engine existing needs a cluster"):
        ExistingEngine(SandboxSpec(name="box", engine="existing")).kube()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {}}],
    }))
    engine = ExistingEngine(SandboxSpec(name="box", engine="existing",
                                        kubernetes={"kubeconfig": kubeconfig}))
    with pytest.raises(UsageError) as nowhere:
        engine.kube()
    assert nowhere.value.exit_code == 2
    assert "127.0.0.1:9" in nowhere.value.line() and "\n" not in nowhere.value.line()


def test_settings_come_from_the_spec_not_the_environment(monkeypatch) -> None:
    """Trust-on-first-use, the registry and the notebook image are the spec's; the old
    environment variables do nothing."""
    monkeypatch.setenv("KFBOX_TRUST_ON_FIRST_USE", "1")
    monkeypatch.setenv("KFBOX_REGISTRY", "elsewhere:1")
    monkeypatch.setenv("KFBOX_NOTEBOOK_IMAGE", "elsewhere/nb:1")
    assert not KindEngine(kind_spec()).manifest_cache().trust_on_first_use
    assert KindEngine(kind_spec(kubernetes={"trust_on_first_use": True})).manifest_cache() \
        .trust_on_first_use
    spec = SandboxSpec(name="box", engine="existing",
                       kubernetes={"registry": "registry.example:5000/team",
                                   "notebook_image": "example.invalid/nb:v2"})
    assert spec.kubernetes.registry == "registry.example:5000/team"
    with pytest.raises(ValueError, match="registry"):
        SandboxSpec(kubernetes={"registry": "http://no"})
    default = SandboxSpec()
    assert default.kubernetes.registry is None
    assert default.kubernetes.notebook_image is None  # kfbox's own notebook image


def test_the_platform_is_built_from_what_the_provider_hands_it(kubeflow, tmp_path,
                                                               monkeypatch) -> None:
    """One object per concern over the run's own namespace; the registry and GPU runtime come
    from the provider (kind: its registry and `nvidia`; existing: the spec's
    registry, or a one-line failure to build without one)."""

    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    kind = KindEngine(kind_spec(ports=Ports(registry=15001),
                                kubernetes={"notebook_image": "example.invalid/nb:v3"}),
                      kube=kubeflow.kube)
    platform = kind.platform(tmp_path / "run")
    ns = kubeflow.double.get("v1", "namespaces", None, platform.workspace.name)
    assert ns["metadata"]["labels"]["kfbox.run"] == "box"
    assert kubeflow.double.get("v1", "persistentvolumeclaims", platform.workspace.name,
                               "kfbox-store")
    assert platform.images.registry == "localhost:15001"
    assert platform.serving.gpu_runtime_class == "nvidia"
    assert platform.training.runtime(0) == "torch-distributed"
    # The run's tracking server: kfbox's own tracking image pushed to the provider's registry,
    # in the run's namespace, started only when the track step needs it.
    pushed = []
    monkeypatch.setattr(platform.docker, "component_image",
                        lambda name, ca: f"kfbox/{name}:abc123")
    monkeypatch.setattr(platform.docker, "tag", lambda image, tag: pushed.append((image, tag)))
    monkeypatch.setattr(platform.docker, "push", lambda tag: tag.rpartition(":")[0] + "@sha256:1")
    assert platform.tracking.namespace == platform.workspace.name and platform.tracking.url == ""
    assert platform._tracking_image() == "localhost:15001/kfbox/tracking@sha256:1"
    assert pushed == [("kfbox/tracking:abc123", "localhost:15001/kfbox/tracking:abc123")]
    # The run's Notebook: kfbox's notebook image (JupyterLab on the ML runtime) and the runtime
    # in its env, both pushed where the cluster pulls from; the sandbox notebook's image
    # (kubernetes.notebook_image) is not the run's.
    assert platform.notebooks.image() == "localhost:15001/kfbox/jupyter@sha256:1"
    assert platform.notebooks.environment() == {
        "KFBOX_RUNTIME_IMAGE": "localhost:15001/kfbox/runtime@sha256:1"}
    platform.close()
    assert kubeflow.double.get("v1", "namespaces", None, platform.workspace.name) is None

    existing = ExistingEngine(SandboxSpec(name="box", engine="existing"), kube=kubeflow.kube)
    platform = existing.platform(tmp_path / "run")
    assert platform.serving.gpu_runtime_class is None
    with pytest.raises(StepFailure, match=r"set kubernetes\.registry in kfbox\.yaml"):
        platform.images.build(tmp_path, "digits", build_args={})
    with pytest.raises(StepFailure, match=r"set kubernetes\.registry in kfbox\.yaml"):
        platform.images.publish("kfbox/tracking:abc123", "kfbox/tracking")
    platform.close(keep=True)
    assert kubeflow.double.get("v1", "namespaces", None, platform.workspace.name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello: [world\n", "is not valid YAML at line 2"),
        ("just text\n", "is not a kubeconfig (no clusters: list)"),
        ("apiVersion: v1\nclusters: {a: 1}\n", "is not a kubeconfig (no clusters: list)"),
    ],
    ids=["bad-yaml", "plain-text", "clusters-not-a-list"],
)
def test_a_file_that_is_not_a_kubeconfig_is_one_line(tmp_path, text: str, expected: str) -> None:
    """The client library's loader answers such files with a traceback (a TypeError on plain
    text): kfbox reads the file first and says what is wrong with it."""

    path = tmp_path / "kubeconfig"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        client_from_kubeconfig(path)
    assert caught.value.line().startswith(f"kubeconfig {str(path)!r} {expected} — ")
    assert "\n" not in caught.value.line()


def test_existing_finds_gateless_components_by_their_objects_and_never_forces_over_an_owner(
        kubeflow, tmp_path, monkeypatch) -> None:
    """sprockets (no readiness gate) was installed by the cluster's owner with helm: kfbox
    finds it and applies nothing to it. cogs is missing, but its namespace is the owner's:
    kfbox installs the rest and leaves the namespace, saying so in one line."""
    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    kubeflow.kube.apply({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": "widgets-system"}}, manager="helm")
    for name in ("sprockets.yaml", "cogs.yaml"):
        docs = list(yaml.safe_load_all((FIXTURES / name).read_text()))
        if name == "cogs.yaml":
            docs = docs[:1]  # the owner made the namespace only
        for doc in docs:
            kubeflow.kube.apply(doc, manager="helm")
    owned = {"sprockets": {"version": "v1", "min_kubernetes": "1.25", "depends": [],
                           "manifests": [{"url": "{base}/sprockets.yaml",
                                          "objects_sha256": sha("sprockets.yaml")}]},
             "cogs": {"version": "v1", "min_kubernetes": "1.25", "depends": [],
                      "manifests": [{"url": "{base}/cogs.yaml",
                                     "objects_sha256": sha("cogs.yaml")}]}}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}")
    with serve_dir(FIXTURES) as base:
        data = lock(base)
        for name, comp in owned.items():
            comp["manifests"][0]["url"] = comp["manifests"][0]["url"].format(base=base)
            data["components"][name] = comp
        data["platforms"]["core"] = ["sprockets", "cogs"]
        engine = ExistingEngine(SandboxSpec(name="box", engine="existing", gpu="off",
                                            kubernetes={"kubeconfig": kubeconfig}),
                                catalog=parse_lock(data), kube=kubeflow.kube)
        engine.up(quiet_reporter())
    kfbox_writes = [r.url.path for r in kubeflow.double.log if r.method == "PATCH"
                    and r.params.get("fieldManager", "").startswith("kfbox")]
    assert engine.recorded()["found"] == ["sprockets"]
    assert engine.recorded()["installed"] == ["cogs"]
    assert kfbox_writes == ["/api/v1/namespaces/cogs-system/configmaps/cogs"]
    assert engine.recorded()["install"][0]["left"] == [
        "Namespace cogs-system is managed by helm: kfbox left it as it is"]
    namespace = kubeflow.double.get("v1", "namespaces", None, "cogs-system")
    assert [m["manager"] for m in namespace["metadata"]["managedFields"]] == ["helm"]


def test_a_pushed_image_is_pinned_by_the_digest_of_the_registry_pods_pull_from(runner) -> None:
    """An image also pushed to (or pulled from) another registry carries that registry's
    digest too, first in RepoDigests here: the pin is the one of the registry pushed to."""

    theirs, ours = "mirror.example/team/digits@sha256:" + "1" * 64, \
        "localhost:15000/digits@sha256:" + "2" * 64
    runner.script[:] = [(("docker", "inspect"), 0, f'["{theirs}","{ours}"]\n')]
    docker = HostDocker(Tools(runner=runner, which=dict(TOOLS)))
    assert docker.push("localhost:15000/digits:latest") == ours
    runner.script[:] = [(("docker", "inspect"), 0, f'["{theirs}"]\n')]
    with pytest.raises(Exception, match="left no digest in localhost:15000/digits"):
        docker.push("localhost:15000/digits:latest")
