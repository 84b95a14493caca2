"""Installer contract, against the Kubernetes API double (kmock subclass, with server-side
apply's field ownership: ssa.py) and a local HTTP server for manifests. Verified here:
ordering (webhook configurations after their workloads), one field manager per component,
objects-digest refusal, trust-on-first-use, caching,
readiness gates and kfbox's configuration checks, version gates, retries, kfbox's adjustments
to upstream objects (KServe's deployment mode without losing the config's other keys, the
device plugin's runtime class). Only on a real cluster: real controllers' readiness and the
real upstream manifests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from kapi_double import Denied
from manifests_server import serve_dir
from pins import sha

from kfbox.engines.kubernetes import readiness
from kfbox.engines.kubernetes.adjust import nvidia_runtime_class
from kfbox.engines.kubernetes.catalog import load_catalog, parse_lock
from kfbox.engines.kubernetes.installer import Installer, apply_order, parse_objects
from kfbox.engines.kubernetes.manifest_cache import ManifestCache, ManifestRefused, objects_digest
from kfbox.engines.kubernetes.tools import Tools
from kfbox.host.errors import KfboxError, PreflightError, UsageError
from kfbox.host.progress import quiet_reporter

FIXTURES = Path(__file__).parent / "fixtures"



def lock(base: str, *, widgets_sha: str | None = None, gadgets_sha: str | None = None,
         min_k8s: str = "1.30") -> dict[str, Any]:
    return {
        "schema": 1,
        "components": {
            "gadgets": {
                "version": "v2", "min_kubernetes": "1.25", "depends": ["widgets"],
                "manifests": [{"url": f"{base}/gadgets.yaml",
                               "objects_sha256": gadgets_sha or sha("gadgets.yaml")}],
                "ready": {"deployments": ["widgets-system/gadgets"]},
            },
            "widgets": {
                "version": "v1", "min_kubernetes": min_k8s, "depends": [],
                "manifests": [{"url": f"{base}/widgets.yaml",
                               "objects_sha256": widgets_sha or sha("widgets.yaml")}],
                "ready": {"crds": ["widgets.example.kfbox.dev"],
                          "deployments": ["widgets-system/widgets-controller"],
                          "webhooks": ["widgets.example.kfbox.dev"]},
            },
        },
        "platforms": {"test": ["gadgets"]},
    }


def installer(cluster, tmp_path: Path, **store_args: Any) -> Installer:
    store = ManifestCache(cache=tmp_path / "cache", tools=Tools(), **store_args)
    store.cache.mkdir(exist_ok=True)
    return Installer(cluster.kube, store, {}, quiet_reporter(), ready_timeout_s=3, poll_s=0.05,
                     apply_budget_s=2)


def test_plan_puts_dependencies_first_and_rejects_unknown() -> None:
    catalog = parse_lock(lock("http://x"))
    assert [c.name for c in catalog.plan(catalog.platform("test", gpu=False))] == [
        "widgets", "gadgets"]
    with pytest.raises(UsageError, match="unknown component 'nope'"):
        catalog.plan(["nope"])


def test_shipped_lock_parses_and_core_platform_orders_cert_manager_before_kserve() -> None:
    catalog = load_catalog()
    core = [c.name for c in catalog.plan(catalog.platform("core", gpu=False))]
    assert core.index("cert-manager") < core.index("kserve")
    assert core.index("trainer") < core.index("trainer-runtimes")
    assert "device-plugin" not in core
    assert "device-plugin" in catalog.platform("core", gpu=True)
    assert core.index("trainer") < core.index("katib")  # Katib watches kinds present at start
    assert "registry" not in catalog.platform("core", gpu=True, kind=False)
    assert "device-plugin" not in catalog.platform("core", gpu=True, kind=False)
    # No hash is invented: every upstream manifest is either pinned to 64 hex digits or null.
    for comp in catalog.components.values():
        for m in comp.manifests:
            assert m.builtin or m.url.startswith("https://") or m.kustomize.startswith("https://")
            assert m.objects_sha256 is None or len(m.objects_sha256) == 64


def test_apply_order_namespaces_then_crds() -> None:
    objects = parse_objects((FIXTURES / "widgets.yaml").read_bytes())
    kinds = [o["kind"] for o in apply_order(list(reversed(objects)))]
    assert kinds[:2] == ["Namespace", "CustomResourceDefinition"]


def test_install_against_double_applies_in_order_and_waits_ready(cluster, tmp_path) -> None:
    with serve_dir(FIXTURES) as base:
        catalog = parse_lock(lock(base))
        results = installer(cluster, tmp_path).install(catalog.plan(["gadgets"]))
    assert [r.component for r in results] == ["widgets", "gadgets"]
    assert all(r.seconds >= 0 for r in results)
    widget = cluster.double.get("example.kfbox.dev/v1", "widgets", "widgets-system",
                                "default-widget")
    assert widget is not None and widget["spec"] == {"size": 3}
    assert widget["metadata"]["uid"]
    patches = [r for r in cluster.double.log if r.method == "PATCH"]
    assert {r.params.get("fieldManager") for r in patches} == {"kfbox/widgets",
                                                               "kfbox/gadgets"}
    assert all(r.headers["Content-Type"].startswith("application/apply-patch+yaml")
               for r in patches)


def test_second_install_needs_no_network(cluster, tmp_path) -> None:
    served = tmp_path / "served"
    shutil.copytree(FIXTURES, served)
    with serve_dir(served) as base:
        catalog = parse_lock(lock(base))
        installer(cluster, tmp_path).install(catalog.plan(["widgets"]))
    shutil.rmtree(served)  # and the server is gone: only the cache can answer now
    installer(cluster, tmp_path).install(catalog.plan(["widgets"]))


def test_manifest_differing_from_lock_is_refused_before_anything_is_applied(
        cluster, tmp_path) -> None:
    with serve_dir(FIXTURES) as base:
        catalog = parse_lock(lock(base, gadgets_sha="0" * 64))
        with pytest.raises(ManifestRefused, match="differs from the lock's objects_sha256"):
            installer(cluster, tmp_path).install(catalog.plan(["gadgets"]))
    assert not [r for r in cluster.double.log if r.method == "PATCH"]


def test_a_changed_object_is_refused_and_a_reformatted_manifest_is_not(cluster,
                                                                       tmp_path) -> None:
    """The lock pins the objects, not the bytes: the same objects in another order, quoting
    and indentation (another kustomize version) install; one changed value is refused in one
    line naming the manifest, both digests and the fix, before anything is applied."""
    served = tmp_path / "served"
    served.mkdir()
    docs = list(yaml.safe_load_all((FIXTURES / "widgets.yaml").read_text()))
    (served / "widgets.yaml").write_text(yaml.safe_dump_all(reversed(docs), indent=4,
                                                            default_style='"'))
    with serve_dir(served) as base:
        data = lock(base)
        data["components"]["widgets"]["manifests"][0]["objects_sha256"] = sha("widgets.yaml")
        installer(cluster, tmp_path).install(parse_lock(data).plan(["widgets"]))
        docs[2]["spec"]["template"]["spec"]["containers"][0]["image"] = "example.invalid/evil:v1"
        (served / "widgets.yaml").write_text(yaml.safe_dump_all(docs))
        shutil.rmtree(tmp_path / "cache")
        before = len([r for r in cluster.double.log if r.method == "PATCH"])
        with pytest.raises(ManifestRefused) as refused:
            installer(cluster, tmp_path).install(parse_lock(data).plan(["widgets"]))
    message = str(refused.value)
    assert "\n" not in message and f"{base}/widgets.yaml" in message
    assert sha("widgets.yaml") in message
    actual = objects_digest((served / "widgets.yaml").read_bytes())
    assert actual in message and actual != sha("widgets.yaml")
    assert "components.lock.yaml" in refused.value.fix
    assert len([r for r in cluster.double.log if r.method == "PATCH"]) == before


def test_unpinned_manifest_refused_unless_trust_on_first_use(cluster, tmp_path) -> None:
    with serve_dir(FIXTURES) as base:
        data = lock(base)
        data["components"]["widgets"]["manifests"][0]["objects_sha256"] = None
        catalog = parse_lock(data)
        with pytest.raises(ManifestRefused, match="no pinned objects_sha256") as refused:
            installer(cluster, tmp_path).install(catalog.plan(["widgets"]))
        assert sha("widgets.yaml") in str(refused.value)
        trusting = installer(cluster, tmp_path, trust_on_first_use=True)
        trusting.install(catalog.plan(["widgets"]))
    assert trusting.manifests.pins() == {f"{base}/widgets.yaml": sha("widgets.yaml")}


def test_cluster_too_old_names_component_and_minimum(cluster, tmp_path) -> None:
    catalog = parse_lock(lock("http://127.0.0.1:9", min_k8s="1.33"))
    with pytest.raises(PreflightError, match=r"widgets v1 needs Kubernetes >= 1\.33; the "
                                             r"cluster runs 1\.32"):
        installer(cluster, tmp_path).install(catalog.plan(["widgets"]))


def test_readiness_times_out_naming_what_is_pending(cluster, tmp_path) -> None:
    cluster.double.on_write.pop()  # no workload controller: the Deployment never gets Available
    with serve_dir(FIXTURES) as base:
        catalog = parse_lock(lock(base))
        with pytest.raises(KfboxError, match="widgets not ready after 3s; waiting for "
                                             "deployment widgets-system/widgets-controller"):
            installer(cluster, tmp_path).install(catalog.plan(["widgets"]))


def test_transient_failures_are_retried(cluster, tmp_path) -> None:
    # The first two applies of the Deployment answer 503, as an API server under load does.
    path = "/apis/apps/v1/namespaces/widgets-system/deployments/widgets-controller"
    cluster.double.failures["PATCH", path] = [503, 503]
    with serve_dir(FIXTURES) as base:
        catalog = parse_lock(lock(base))
        installer(cluster, tmp_path).install(catalog.plan(["widgets"]))
    deployment_patches = [r for r in cluster.double.log
                          if r.method == "PATCH" and r.url.path.endswith("/widgets-controller")]
    assert len(deployment_patches) == 3


def lockbox_lock(base: str) -> dict[str, Any]:
    return {"schema": 1, "components": {"lockbox": {
        "version": "v1", "min_kubernetes": "1.25", "depends": [],
        "manifests": [{"url": f"{base}/lockbox.yaml", "objects_sha256": sha("lockbox.yaml")}],
        "ready": {"deployments": ["lockbox/katib-controller"],
                  "webhooks": ["lockbox.example.kfbox.dev"]}}},
        "platforms": {"core": ["lockbox"]}}


def test_a_pod_webhook_cannot_lock_out_its_own_controller(cluster, tmp_path) -> None:
    """Katib v0.19.0's pod mutator (failurePolicy Fail by default) guards every pod of the
    namespace its controller runs in, excluding only requests by the controller itself, not
    the ReplicaSet controller's: applied before that pod exists, nothing there can start. kfbox
    applies a component's webhook configurations once its Deployments are Available."""
    with serve_dir(FIXTURES) as base:
        installer(cluster, tmp_path).install(parse_lock(lockbox_lock(base)).plan(["lockbox"]))
    assert cluster.double.refused == []
    assert cluster.double.get("v1", "pods", "lockbox", "katib-controller-0") is not None
    written = [r.url.path.rsplit("/", 2)[-2] for r in cluster.double.log if r.method == "PATCH"]
    assert written[-1] == "mutatingwebhookconfigurations"


def test_the_double_refuses_a_pod_behind_an_unreachable_fail_webhook(cluster) -> None:
    """The API server's rule (webhooks.unreachable_webhooks): refused under Fail, admitted
    under Ignore, outside the namespaceSelector, or when the matchCondition excludes the
    requester."""
    for doc in yaml.safe_load_all((FIXTURES / "lockbox.yaml").read_text()):
        if doc["kind"] in ("Namespace", "MutatingWebhookConfiguration"):
            cluster.kube.apply(doc)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "lockbox"},
           "spec": {"containers": [{"name": "c", "image": "x"}]}}
    with pytest.raises(Denied, match=r'failed calling webhook "mutator\.pod\.katib\.kubeflow\.org"'
                                     r'.*no endpoints available for service "katib-controller"'):
        cluster.double.create("v1", "pods", pod)
    cluster.double.create("v1", "pods", pod,
                          user="system:serviceaccount:lockbox:katib-controller")
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    cluster.double.create("v1", "pods", {**pod, "metadata": {"name": "p", "namespace": "other"}})


def test_full_platform_is_core_and_more(tmp_path) -> None:
    """`full` adds the Kubeflow platform to core: Trainer v2 and Katib with TrainJob trials
    included (the manifests' own example has neither)."""
    catalog = load_catalog()
    core = catalog.platform("core", gpu=True)
    full = catalog.platform("full", gpu=True)
    assert set(core) < set(full)
    assert {"trainer", "trainer-runtimes", "kubeflow-dashboard"} <= set(full)
    assert [c.name for c in catalog.plan(full)].index("cert-manager") < \
        [c.name for c in catalog.plan(full)].index("kubeflow-poddefaults")


def kserve_lock(base: str) -> dict[str, Any]:
    return {"schema": 1, "components": {"kserve": {
        "version": "v0", "min_kubernetes": "1.25", "depends": [],
        "manifests": [{"url": f"{base}/kserve-config.yaml",
                       "objects_sha256": sha("kserve-config.yaml")}],
        "adjust": ["kserve-standard-deployment"], "ready": {}}}, "platforms": {"core": ["kserve"]}}


def test_kserve_becomes_standard_without_losing_its_configs_other_keys(cluster, tmp_path) -> None:
    """Under server-side apply a second, partial apply of inferenceservice-config by the same
    manager would remove every key it left out; kfbox changes `deploy` in the one apply."""
    with serve_dir(FIXTURES) as base:
        catalog = parse_lock(kserve_lock(base))
        for _ in range(2):  # a repairing `up` keeps them too
            installer(cluster, tmp_path).install(catalog.plan(["kserve"]))
    data = cluster.double.get("v1", "configmaps", "kserve", "inferenceservice-config")["data"]
    assert set(data) == {"deploy", "ingress", "storageInitializer"}
    assert json.loads(data["deploy"]) == {"defaultDeploymentMode": "Standard"}
    assert json.loads(data["ingress"])["ingressDomain"] == "example.com"
    patches = [r for r in cluster.double.log if r.method == "PATCH"
               and r.url.path.endswith("/inferenceservice-config")]
    assert len(patches) == 2  # one apply per install, never a second partial one


def test_the_double_prunes_what_the_same_manager_leaves_out(cluster) -> None:
    """ssa.py's rule, as upstream's: the same manager's omitted fields go, another's stay, and
    a different value for another manager's field is a conflict unless forced."""
    from kubernetes.client.exceptions import ApiException

    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1", "b": "2"}}
    cluster.kube.apply(cm, manager="one")
    cluster.kube.apply({**cm, "data": {"a": "1"}}, manager="one")
    assert cluster.double.get("v1", "configmaps", "default", "c")["data"] == {"a": "1"}
    cluster.kube.apply({**cm, "data": {"c": "3"}}, manager="two")
    cluster.kube.apply({**cm, "data": {}}, manager="one")
    assert cluster.double.get("v1", "configmaps", "default", "c")["data"] == {"c": "3"}
    with pytest.raises(ApiException) as conflict:  # unforced: kfbox itself always forces
        cluster.kube.api.call_api(
            "/api/v1/namespaces/default/configmaps/c", "PATCH",
            query_params=[("fieldManager", "three")], body={**cm, "data": {"c": "5"}},
            header_params={"Content-Type": "application/apply-patch+yaml"},
            _preload_content=False, _request_timeout=10)
    assert conflict.value.status == 409
    cluster.kube.apply({**cm, "data": {"c": "4"}}, manager="one")
    assert cluster.double.get("v1", "configmaps", "default", "c")["data"] == {"c": "4"}


def test_katib_is_ready_only_when_it_runs_trainjob_trials(cluster, tmp_path) -> None:
    """kfbox's readiness check of Katib: katib-config must list TrainJob in trialResources and
    the controller's role must allow creating TrainJobs (Katib v0.19.0 ships both)."""
    import yaml


    def katib_config(trials: list[str]) -> None:
        cluster.double.put("v1", "configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "katib-config", "namespace": "kubeflow"},
            "data": {"katib-config.yaml": yaml.safe_dump(
                {"init": {"controller": {"trialResources": trials}}})}})

    katib_config(["Job.v1.batch", "PyTorchJob.v1.kubeflow.org"])  # as v0.18.0 ships it
    assert "TrainJob.v1alpha1.trainer.kubeflow.org in kubeflow/katib-config trialResources" in \
        readiness.katib_trainjob_trials(cluster.kube)
    katib_config(["TrainJob.v1alpha1.trainer.kubeflow.org", "Job.v1.batch"])
    assert readiness.katib_trainjob_trials(cluster.kube) == \
        "clusterrole katib-controller allowing create on trainjobs"
    cluster.double.put("rbac.authorization.k8s.io/v1", "clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "katib-controller"},
        "rules": [{"apiGroups": ["trainer.kubeflow.org"], "resources": ["trainjobs"],
                   "verbs": ["create", "get"]}]})
    assert readiness.katib_trainjob_trials(cluster.kube) is None
    katib = load_catalog().components["katib"]
    assert katib.ready.checks == ("katib-trainjob-trials",)


def test_the_device_plugin_runs_under_the_nvidia_runtime_class() -> None:
    """nvkind keeps runc the nodes' default: the plugin's DaemonSet must name `nvidia`."""
    daemonset = {"apiVersion": "apps/v1", "kind": "DaemonSet",
                 "metadata": {"name": "p", "namespace": "kube-system"},
                 "spec": {"template": {"spec": {"containers": [{"name": "p", "image": "x"}]}}}}
    adjusted = nvidia_runtime_class([daemonset])
    assert adjusted[0]["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    assert "nvidia-runtime-class" in load_catalog().components["device-plugin"].adjust
