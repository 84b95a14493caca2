"""The lock and kfbox's constants checked against the upstream facts (upstream/facts.yaml), read
from each project at the pinned tag: versions, the names each readiness gate waits for
(Deployments, DaemonSets, CRDs, webhooks), the ConfigMaps that name images, and every upstream
name or value kfbox hard-codes. A pin moved without its facts, or a name kfbox made up, fails
here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import upstream
from schemas import CRDS

from kfbox.engines.kubernetes import (
    adjust,
    jupyter,
    kindconfig,
    nvkind,
    readiness,
    registry,
    serving,
    storemount,
    tools,
    tracking,
    training,
    tuning,
    workspace,
)
from kfbox.engines.kubernetes.catalog import load_catalog
from kfbox.host.errors import KfboxError

ROOT = Path(__file__).resolve().parents[3]
CATALOG = load_catalog()
FACTS = upstream.facts()
PLATFORM = FACTS["kubeflow"]


def facts_of(name: str) -> dict:
    return FACTS["components"].get(name) or PLATFORM["components"][name]


UPSTREAM = [c for c in CATALOG.components.values() if c.version != "builtin"]


@pytest.mark.parametrize("comp", UPSTREAM, ids=lambda c: c.name)
def test_each_pinned_component_matches_its_upstream_release(comp) -> None:
    facts = facts_of(comp.name)
    version = facts.get("version", PLATFORM["version"])
    assert comp.version == version
    for manifest in comp.manifests:
        assert manifest.builtin or version in manifest.source
    for gate in ("crds", "deployments", "daemonsets", "webhooks"):
        missing = set(getattr(comp.ready, gate)) - set(facts.get(gate, []))
        assert not missing, f"{comp.name} waits for {gate} {missing} upstream does not have"
    assert set(comp.image_configs) <= set(facts.get("config_images", {}))
    assert set(comp.image_settings) <= set(facts.get("setting_images", {}))


def test_every_upstream_manifest_is_pinned_to_the_digest_computed_from_source() -> None:
    """No trust on first use: each manifest's objects_sha256 is the one computed from upstream
    source at its tag (facts.yaml manifest_digests, with how)."""
    digests = FACTS["manifest_digests"]
    pinned = {m.source: m.objects_sha256 for c in CATALOG.components.values()
              for m in c.manifests if not m.builtin}
    assert pinned == digests


def test_the_lockbox_fixture_has_katibs_pod_mutator_shape() -> None:
    """fixtures/lockbox.yaml stands for Katib's install in the webhook-ordering test: its pod
    mutator must be Katib v0.19.0's (name, default failurePolicy, selector, condition)."""
    from pathlib import Path

    import yaml

    katib = facts_of("katib")
    mutator = katib["pod_mutator"]
    docs = list(yaml.safe_load_all((Path(__file__).parent / "fixtures" / "lockbox.yaml")
                                   .read_text()))
    hook = next(d for d in docs if d["kind"] == "MutatingWebhookConfiguration")["webhooks"][0]
    assert hook["name"] == mutator["webhook"]
    assert hook.get("failurePolicy") == mutator["failure_policy"]
    assert hook["namespaceSelector"]["matchLabels"] == katib["metrics_collector_label"]
    assert katib["namespace_labels"]["kubeflow"] == katib["metrics_collector_label"]
    assert hook["matchConditions"][0]["expression"] == \
        mutator["match_condition"].replace(":kubeflow:", ":lockbox:")
    assert hook["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"],
                              "operations": ["CREATE"], "resources": ["pods"]}]


def test_the_trainer_gate_waits_for_jobsets_real_deployment() -> None:
    """JobSet's namePrefix `jobset-` + `controller-manager`, in the Trainer's namespace."""
    assert "kubeflow-system/jobset-controller-manager" in \
        CATALOG.components["trainer"].ready.deployments


def test_katib_is_a_release_that_runs_trainjob_trials() -> None:
    katib = facts_of("katib")
    assert readiness.TRAINJOB_TRIAL in katib["trial_resources"]
    assert any("trainjobs" in rule["resources"] and "create" in rule["verbs"]
               for rule in katib["controller_rbac"])
    assert "trainer" in CATALOG.components["katib"].depends
    assert katib["metrics_collector_label"] == workspace.METRICS_COLLECTOR_LABEL
    defaults = katib["trainjob_trial_defaults"]
    assert (
        defaults["successCondition"], defaults["failureCondition"],
        defaults["primaryPodLabels"]) == (tuning.SUCCESS, tuning.FAILURE, tuning.PRIMARY_POD)
    assert set(tuning.ALGORITHMS.values()) <= set(katib["suggestion_algorithms"])


def test_the_full_platform_adds_what_kubeflows_own_example_lacks() -> None:
    """Manifests 26.03's example installs Trainer v2.1.0 (no runtimePatches, which came in
    v2.2.0) and KServe v0.16.0 (out of support): `full` keeps core's instead."""
    def release(tag: str) -> tuple[int, ...]:
        return tuple(int(part) for part in tag.lstrip("v").split("."))

    assert release(PLATFORM["trainer_v2_in_example"]) < (2, 2, 0) <= \
        release(CATALOG.components["trainer"].version)
    assert release(PLATFORM["kserve_in_example"]) < release(CATALOG.components["kserve"].version)
    assert PLATFORM["katib_in_example"] == CATALOG.components["katib"].version
    full = CATALOG.platform("full", gpu=True)
    assert "trainer" in full and set(CATALOG.platform("core", gpu=True)) <= set(full)
    for name, facts in PLATFORM["components"].items():
        targets = [m.kustomize for m in CATALOG.components[name].manifests]
        assert targets == [f"https://github.com/kubeflow/manifests.git/{path}"
                           f"?ref={PLATFORM['version']}" for path in facts["paths"]]


def test_kfbox_constants_are_upstreams_names() -> None:
    trainer = facts_of("trainer")
    assert trainer["node"] == storemount.NODE
    assert training.TRAINING_RUNTIME in facts_of("trainer-runtimes")["cluster_training_runtimes"]
    kserve = facts_of("kserve")
    assert "/".join(adjust.KSERVE_CONFIG) == kserve["config"]["name"]
    assert adjust.STANDARD_DEPLOYMENT == kserve["default_deployment_mode"] in \
        kserve["deployment_modes"]
    assert serving.DEPLOYMENT_MODE[kserve["deployment_mode_annotation"]] == \
        adjust.STANDARD_DEPLOYMENT  # not the deprecated alias RawDeployment
    assert adjust.STANDARD_DEPLOYMENT not in kserve["deployment_mode_aliases"]
    # The release manifest has no Namespace since v0.17: kfbox creates the one it names.
    assert kserve["namespace_in_release_manifest"] is False
    assert adjust.kserve_namespace()[0]["metadata"]["name"] == kserve["namespace"] == \
        adjust.KSERVE_CONFIG[0]
    assert CATALOG.components["kserve"].manifests[0].builtin == "kserve-namespace"
    assert set(kserve["crds_manifest"]["crds"]) <= set(kserve["crds"])
    assert list(serving.DEPLOYMENT_MODE) == [kserve["deployment_mode_annotation"]]
    assert serving.SERVICE_PORT == 80 and serving.predictor_service("m") == \
        "svc/m" + kserve["predictor_service_suffix"]
    assert kserve["pod_label"] == serving.ISVC_POD_LABEL
    controller = facts_of("notebook-controller")
    assert (controller["container_port"], controller["serving_port"]) == (
        jupyter.CONTAINER_PORT, jupyter.SERVICE_PORT)
    image = facts_of("notebook-image")
    assert image["image"] == jupyter.KUBEFLOW_IMAGE
    # kfbox starts `jupyter` by name: the image's PATH finds it where upstream puts it.
    assert image["jupyter"] == f"{image['path_first']}/{jupyter.JUPYTER}"
    assert image["home"] == jupyter.HOME
    kind = facts_of("kind")
    assert (kind["version"], kind["node_image"]) == (tools.KIND_VERSION, kindconfig.NODE_IMAGE)
    assert kind["registry_image"] == registry.REGISTRY_IMAGE
    # The node image's containerd config is version 2, so the CRI plugin path kfbox patches
    # is the recipe's (a version-3 config would name io.containerd.cri.v1.images).
    assert kind["containerd_config_version"] == 2
    assert kindconfig.REGISTRY_CONFIG_PATCH.splitlines() == [
        kind["registry_patch_plugin"], f'  config_path = "{kind["registry_config_path"]}"']
    assert kind["registry_config_path"] == kindconfig.CONTAINERD_CERTS_DIR
    recipe = facts_of("nvkind")
    assert recipe["version"] == nvkind.NVKIND_COMMIT
    assert recipe["configure"] in nvkind.node_setup_scripts()
    assert (recipe["runtime_class"], recipe["masked_params"]) == (nvkind.RUNTIME_CLASS,
                                                                   nvkind.MASKED)


def test_model_registry_is_reached_and_installed_as_upstream_says() -> None:
    """Its Service, port and namespace are the manifests' own; the client is one on the API
    the pinned server serves (v1alpha3); every kind its overlay renders is one the adjustment
    places in `kubeflow`, and a kind it does not know is refused, not guessed."""
    registry = facts_of("model-registry")
    namespace, service = registry["api_service"]["name"].split("/")
    assert (namespace, f"svc/{service}", registry["api_service"]["http_port"]) == (
        adjust.MODEL_REGISTRY_NAMESPACE, tracking.REGISTRY_SERVICE, tracking.REGISTRY_PORT)
    assert registry["namespace"] == adjust.MODEL_REGISTRY_NAMESPACE
    assert set(registry["kinds"]) == adjust.MODEL_REGISTRY_KINDS
    assert registry["client"]["model-registry"] in next(
        line for line in (ROOT / "pyproject.toml").read_text().splitlines()
        if '"model-registry==' in line)
    import inspect

    from mr_openapi.api import model_registry_service_api

    paths = re.findall(r'resource_path="([^"]+)"', inspect.getsource(model_registry_service_api))
    assert paths and all(p.startswith(registry["api_path"] + "/") for p in paths)
    placed = adjust.model_registry_namespace(
        [{"kind": kind, "metadata": {"name": kind.lower()}} for kind in registry["kinds"]])
    assert {o["metadata"]["namespace"] for o in placed} == {"kubeflow"}
    with pytest.raises(KfboxError, match="ClusterRole, not a kind kfbox knows"):
        adjust.model_registry_namespace([{"kind": "ClusterRole", "metadata": {"name": "x"}}])


@pytest.mark.parametrize("path", sorted(CRDS.glob("*.json")), ids=lambda p: p.stem)
def test_each_crd_schema_comes_from_the_pinned_release(path) -> None:
    data = json.loads(path.read_text())
    owner = {"kubeflow/trainer": "trainer", "kubeflow/katib": "katib", "kserve/kserve": "kserve",
             "kubeflow/kubeflow": "notebook-controller"}[data["source"]["repo"]]
    assert data["source"]["tag"] == CATALOG.components[owner].version
    assert data["crd"] in facts_of(owner)["crds"]


def test_the_doubles_fixtures_have_upstreams_shape() -> None:
    """The stand-in runtime and KServe config the tests install are shaped as the pinned
    releases' own."""
    import yaml

    runtime = yaml.safe_load((CRDS.parent.parent / "fixtures" / "torch-distributed.yaml")
                             .read_text())
    shape = facts_of("trainer-runtimes")["torch_distributed"]
    job = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]
    assert (runtime["metadata"]["name"], runtime["metadata"]["labels"][
        "trainer.kubeflow.org/framework"], job["name"],
        job["template"]["spec"]["template"]["spec"]["containers"][0]["name"]) == (
        training.TRAINING_RUNTIME, shape["framework_label"], shape["replicated_job"],
        shape["container"])
    kserve = yaml.safe_load_all((CRDS.parent.parent / "fixtures" / "kserve-config.yaml")
                                .read_text())
    config = next(d for d in kserve if d["kind"] == "ConfigMap")
    assert set(config["data"]) <= set(facts_of("kserve")["config"]["keys"])
    assert "/".join((config["metadata"]["namespace"], config["metadata"]["name"])) == \
        facts_of("kserve")["config"]["name"]


def test_cert_managers_rotation_default_touches_nothing_kfbox_creates() -> None:
    """cert-manager v1.18+ gives a Certificate without privateKey.rotationPolicy `Always` (a
    new key at each renewal). kfbox's own objects (its builtins) hold no Certificate; the
    pinned components' Certificates are upstream's, listed in facts.yaml."""
    facts = facts_of("cert-manager")
    assert facts["default_rotation_policy"] == {"value": "Always", "since": "v1.18.0"}
    assert tuple(int(p) for p in CATALOG.components["cert-manager"].version.lstrip("v")
                 .split(".")) >= (1, 18, 0)
    builtins = [*adjust.kserve_namespace(), nvkind.runtime_class(), nvkind.training_runtime(),
                *jupyter.sandbox_objects("box", "example.invalid/nb:1", "t")]
    assert builtins and not [o for o in builtins if o["kind"] == "Certificate"]


def test_cert_manager_is_a_supported_release_for_kinds_node() -> None:
    """The pinned cert-manager is one upstream still supports, on the Kubernetes kind's node runs
    (cert-manager/website, content/docs/releases/README.md), and the lock's floor is that
    table's."""
    low, high = (tuple(int(p) for p in v.split("."))
                 for v in facts_of("cert-manager")["supported_kubernetes"])
    assert CATALOG.components["cert-manager"].min_kubernetes == low
    node = re.match(r"kindest/node:v(\d+)\.(\d+)\.", kindconfig.NODE_IMAGE)
    assert node and low <= (int(node[1]), int(node[2])) <= high


def test_the_notebooks_rights_are_upstreams_user_rights_narrowed() -> None:
    """Every verb kfbox grants the sandbox notebook on a resource, some pinned component's own
    user role grants on it too (Trainer, Katib, KServe edit roles at their tags)."""
    from kfbox.engines.kubernetes.notebook_access import CLUSTER_RULES, NAMESPACE_RULES

    upstream_rules: dict[str, set[str]] = {}
    for name in ("trainer", "katib", "kserve"):
        for resource, verbs in facts_of(name)["user_rules"].items():
            upstream_rules.setdefault(resource, set()).update(verbs)
    for rule in NAMESPACE_RULES + CLUSTER_RULES:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted = upstream_rules.get(f"{group}/{resource}", set())
                assert set(rule["verbs"]) <= granted, (group, resource)
