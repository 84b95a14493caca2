"""The offline bundle: `kfbox bundle` (write_bundle) from fixture manifests served on 127.0.0.1,
then `kfbox up --from-bundle` with that server gone, against the API double (kmock subclass).
Verified here: manifests stored by sha256, a lock with every hash filled (trust-on-first-use
included), the image lists (pod templates, the images named in the data of the ConfigMaps the
lock names, such as every image Katib v0.19.0's katib-config starts, kfbox's notebook image;
kind's node image and the registry for the host), tarballs only for images the host has or can
pull, refusal of a manifest the bundle lacks, and the kind bring-up loading the bundle's images
(docker and kind checked as commands by a recording runner). Only on a real host: docker
pull/save/load and `kind load` moving real images, and the real upstream manifests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import upstream
import yaml
from manifests_server import serve_dir
from pins import sha

from kfbox.engines.kubernetes.bundle import (
    NODE_IMAGE_RECORD,
    bundle_catalog,
    load_images,
    offline_node_image,
    save_node_image,
    tarball,
    write_bundle,
)
from kfbox.engines.kubernetes.catalog import parse_lock
from kfbox.engines.kubernetes.hostdocker import HostDocker
from kfbox.engines.kubernetes.installer import Installer
from kfbox.engines.kubernetes.kind import KindEngine
from kfbox.engines.kubernetes.kindconfig import NODE_IMAGE, NODE_IMAGE_TAG
from kfbox.engines.kubernetes.manifest_cache import ManifestCache
from kfbox.engines.kubernetes.tools import Tools
from kfbox.host.config import SandboxSpec
from kfbox.host.errors import UsageError
from kfbox.host.progress import quiet_reporter

FIXTURES = Path(__file__).parent / "fixtures"
TOOLS = {"docker": "/usr/bin/docker", "kind": "/usr/local/bin/kind", "kubectl": "/usr/bin/kubectl"}
NOTEBOOK_IMAGE = "ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-pytorch-full:v1.10.0"



def katib_like(folder: Path) -> None:
    """A component whose controller starts images named only in its ConfigMap's data, as
    Katib's katib-config names its suggestion and metrics-collector images (the images are
    v0.19.0's, from the upstream facts); a second ConfigMap (examples) is not one to bundle."""
    images = upstream.component("katib")["config_images"]["kubeflow/katib-config"]
    config = {"runtime": {"metricsCollectors": [{"kind": "StdOut", "image": images[0]}],
                          "suggestions": [{"algorithmName": f"a{i}", "image": image}
                                          for i, image in enumerate(images[1:])]}}
    objects = [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "katib-config", "namespace": "kubeflow"},
         "data": {"katib-config.yaml": yaml.safe_dump(config)}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "trial-templates", "namespace": "kubeflow"},
         "data": {"example.yaml": yaml.safe_dump({"image": "example.invalid/example:v1"})}},
    ]
    (folder / "katib-like.yaml").write_text(yaml.safe_dump_all(objects))


def kfp_like(folder: Path) -> None:
    """A component whose controllers start images no pod template names, as KFP 2.17.0 names
    its driver and launcher in the API server's env, Argo's executor in the workflow
    controller's arguments and the cache's image in a ConfigMap key (values from the upstream
    facts); an env variable the lock does not name is not an image to bundle."""
    images = upstream.component("pipelines")["setting_images"]
    container = {"name": "api", "image": "example.invalid/api:v1",
                 "env": [{"name": name, "value": images[name]}
                         for name in ("V2_DRIVER_IMAGE", "V2_LAUNCHER_IMAGE")]
                 + [{"name": "LOG_LEVEL", "value": "info"}]}
    controller = {"name": "wc", "image": "example.invalid/wc:v1",
                  "args": ["--configmap", "wc", "--executor-image", images["--executor-image"]]}
    objects = [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": "kubeflow"},
         "spec": {"template": {"spec": {"containers": [c]}}}}
        for name, c in (("api", container), ("wc", controller))
    ] + [{"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "pipeline-install-config", "namespace": "kubeflow"},
          "data": {"cacheImage": images["cacheImage"], "appName": "pipeline"}}]
    (folder / "kfp-like.yaml").write_text(yaml.safe_dump_all(objects))


def lock(base: str) -> dict:
    """widgets pinned in the lock; gadgets and katib-like unpinned (learned on first use)."""
    return {
        "schema": 1,
        "components": {
            "widgets": {
                "version": "v1", "min_kubernetes": "1.30", "depends": [],
                "manifests": [{"url": f"{base}/widgets.yaml",
                               "objects_sha256": sha("widgets.yaml")}],
                "ready": {"crds": ["widgets.example.kfbox.dev"],
                          "deployments": ["widgets-system/widgets-controller"]},
            },
            "gadgets": {
                "version": "v2", "min_kubernetes": "1.25", "depends": ["widgets"],
                "manifests": [{"url": f"{base}/gadgets.yaml", "objects_sha256": None}],
                "ready": {"deployments": ["widgets-system/gadgets"]},
            },
            "katib-like": {
                "version": "v0", "min_kubernetes": "1.25", "depends": [],
                "manifests": [{"url": f"{base}/katib-like.yaml", "objects_sha256": None}],
                "image_configs": ["kubeflow/katib-config"],
            },
            "kfp-like": {
                "version": "v0", "min_kubernetes": "1.25", "depends": [],
                "manifests": [{"url": f"{base}/kfp-like.yaml", "objects_sha256": None}],
                "image_settings": list(upstream.component("pipelines")["setting_images"]),
            },
            "unused": {
                "version": "v0", "min_kubernetes": "1.25", "depends": [],
                "manifests": [{"url": f"{base}/absent.yaml", "objects_sha256": None}],
            },
        },
        "platforms": {"core": ["gadgets", "katib-like", "kfp-like"],
                     "full": ["gadgets", "katib-like", "kfp-like", "unused"]},
    }


@pytest.fixture
def bundle(tmp_path, runner) -> Path:
    """A bundle written from manifests served on 127.0.0.1; the server is gone afterwards.
    The host has widgets' image; no other can be pulled here."""
    served = tmp_path / "served"
    shutil.copytree(FIXTURES, served)
    katib_like(served)
    kfp_like(served)
    runner.script += [
        (("docker", "image", "inspect", "example.invalid/widgets:v1"), 0, "[{}]"),
        (("docker", "image", "inspect"), 1, "No such image"),
        (("docker", "pull"), 1, "pull access denied"),
    ]
    dest = tmp_path / "bundle"
    with serve_dir(served) as base:
        catalog = parse_lock(lock(base))
        tools = Tools(runner=runner, which=dict(TOOLS))
        store = ManifestCache(tmp_path / "cache", tools, trust_on_first_use=True)
        store.cache.mkdir()
        missing = write_bundle(dest, catalog, catalog.plan(catalog.platform("core", gpu=False)),
                               store, HostDocker(tools), quiet_reporter(),
                               extra_images=[NOTEBOOK_IMAGE],
                               host_images=[NODE_IMAGE, "registry:2"])
    shutil.rmtree(served)
    assert "example.invalid/widgets:v1" not in missing
    return dest


def test_bundle_holds_verified_manifests_a_full_lock_and_the_images(bundle, runner) -> None:
    assert len(list((bundle / "manifests").iterdir())) == 4
    assert (bundle / "manifests" / f"{sha('widgets.yaml')}.yaml").is_file()
    written = yaml.safe_load((bundle / "components.lock.yaml").read_text())
    assert set(written["components"]) == {"widgets", "gadgets", "katib-like", "kfp-like"}
    assert written["platforms"] == {"core": ["gadgets", "katib-like", "kfp-like"],
                                   "full": ["gadgets", "katib-like", "kfp-like"]}
    assert all(len(comp["manifests"][0]["objects_sha256"]) == 64
               for comp in written["components"].values())
    listed = (bundle / "images.txt").read_text().split()
    katib_images = upstream.component("katib")["config_images"]["kubeflow/katib-config"]
    assert set(katib_images) <= set(listed)  # named only inside katib-config's data
    settings = upstream.component("pipelines")["setting_images"].values()
    assert set(settings) <= set(listed)  # named only in env, arguments, a ConfigMap key
    assert "info" not in listed and "pipeline" not in listed
    assert NOTEBOOK_IMAGE in listed  # kfbox's own
    assert {"example.invalid/gadgets:v1", "example.invalid/widgets:v1"} <= set(listed)
    assert "example.invalid/example:v1" not in listed  # a ConfigMap the lock does not name
    assert (bundle / "host-images.txt").read_text().split() == sorted([NODE_IMAGE, "registry:2"])
    tar = str(bundle / "images" / "example.invalid_widgets_v1.tar")
    assert ["docker", "save", "-o", tar, "example.invalid/widgets:v1"] in runner.calls
    assert ["docker", "pull", NOTEBOOK_IMAGE] in runner.calls
    assert ["docker", "pull", NODE_IMAGE] in runner.calls


def test_install_from_the_bundle_needs_no_network(bundle, kubeflow, tmp_path, runner) -> None:
    load_images(bundle, HostDocker(Tools(runner=runner, which=dict(TOOLS))), quiet_reporter())
    catalog = bundle_catalog(bundle)
    store = ManifestCache(tmp_path / "empty-cache", Tools(), offline=bundle / "manifests")
    store.cache.mkdir()
    results = Installer(kubeflow.kube, store, {}, quiet_reporter(), ready_timeout_s=3,
                        poll_s=0.05).install(catalog.plan(catalog.platform("core", gpu=False)))
    assert [r.component for r in results] == ["widgets", "gadgets", "katib-like", "kfp-like"]
    assert kubeflow.double.get("apps/v1", "deployments", "widgets-system", "gadgets")
    assert not list(store.cache.iterdir())  # nothing fetched or cached: the bundle served all


def test_a_manifest_missing_from_the_bundle_is_refused(bundle, tmp_path) -> None:
    (bundle / "manifests" / f"{sha('gadgets.yaml')}.yaml").unlink()
    catalog = bundle_catalog(bundle)
    store = ManifestCache(tmp_path / "c", Tools(), offline=bundle / "manifests")
    store.cache.mkdir()
    with pytest.raises(UsageError, match=r"the bundle has no manifest for http://127\.0\.0\.1:"
                                         r"\d+/gadgets\.yaml"):
        store.read(catalog.components["gadgets"].manifests[0])


def test_not_a_bundle_is_one_line(tmp_path) -> None:
    with pytest.raises(UsageError, match="is not a kfbox bundle"):
        bundle_catalog(tmp_path)


def test_kind_up_from_bundle_loads_its_images_then_installs_offline(
        bundle, kubeflow, tmp_path, monkeypatch, runner) -> None:
    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    for image in ("example.invalid/widgets:v1", NOTEBOOK_IMAGE, NODE_IMAGE):
        tarball(bundle, image).write_bytes(b"")  # what `docker save` wrote
    # As Docker's classic image store leaves it after `docker load`: the tag, no repo digest.
    (bundle / NODE_IMAGE_RECORD).write_text(yaml.safe_dump(
        {"pinned": NODE_IMAGE, "tag": NODE_IMAGE_TAG, "id": "sha256:" + "1" * 64}))
    runner.calls.clear()
    runner.script[:] = [
        (("docker", "image", "inspect", "-f", "{{.Id}}", NODE_IMAGE), 1, "No such image"),
        (("docker", "image", "inspect", "-f", "{{.Id}}", NODE_IMAGE_TAG), 0,
         "sha256:" + "1" * 64 + "\n"),
        (("kind", "get", "clusters"), 0, ""),
        (("kind", "get", "kubeconfig"), 0, "apiVersion: v1\nkind: Config\n"),
        (("kind", "get", "nodes"), 0, "box-control-plane\n"),
        (("docker", "inspect", "-f", "{{.State.Running}}"), 0, "true\n"),
        (("docker", "inspect"), 0, '{"kind":{}}'),
    ]
    spec = SandboxSpec(name="box", engine="kind", from_bundle=bundle, gpu="off")
    engine = KindEngine(spec, tools=Tools(runner=runner, which=dict(TOOLS)), kube=kubeflow.kube)
    engine.up(quiet_reporter())
    loaded = [c[-1] for c in runner.calls if c[:3] == ["docker", "load", "-i"]]
    assert len(loaded) == 3
    loads = [c for c in runner.calls if c[:3] == ["kind", "load", "docker-image"]]
    # Into the nodes: the bundle's node images it has tarballs of; the node image itself
    # stays in the host's Docker (kind creates the nodes from it).
    assert loads == [["kind", "load", "docker-image", image, "--name", "box"]
                     for image in ("example.invalid/widgets:v1", NOTEBOOK_IMAGE)]
    create = runner.calls.index(next(c for c in runner.calls if c[:3] == ["kind", "create",
                                                                          "cluster"]))
    assert runner.calls.index(loads[0]) > create  # nodes exist before images go into them
    assert kubeflow.double.get("apps/v1", "deployments", "widgets-system", "gadgets")
    # The nodes are made from the loaded tag (its id checked), not the pinned reference kind
    # would look for, fail to find, and pull.
    config = yaml.safe_load((tmp_path / "home" / "sandboxes" / "box" / "kind-config.yaml")
                            .read_text())
    assert {node["image"] for node in config["nodes"]} == {NODE_IMAGE_TAG}
    assert engine.recorded()["components"] == ["widgets", "gadgets", "katib-like",
                                                  "kfp-like"]


def test_the_offline_node_image_is_the_loaded_tag_checked_by_id(bundle, runner) -> None:
    """Docker's classic store restores a loaded image's tag but not its repo digest: offline,
    kind gets the tag when its id is the bundle's, and a different image there is refused."""
    docker = HostDocker(Tools(runner=runner, which=dict(TOOLS)))
    record = {"pinned": NODE_IMAGE, "tag": NODE_IMAGE_TAG, "id": "sha256:" + "1" * 64}
    (bundle / NODE_IMAGE_RECORD).write_text(yaml.safe_dump(record))
    runner.script[:] = [
        (("docker", "image", "inspect", "-f", "{{.Id}}", NODE_IMAGE), 1, "No such image"),
        (("docker", "image", "inspect", "-f", "{{.Id}}", NODE_IMAGE_TAG), 0, record["id"]),
    ]
    assert offline_node_image(bundle, docker) == NODE_IMAGE_TAG
    runner.script[1] = (runner.script[1][0], 0, "sha256:" + "2" * 64)
    with pytest.raises(UsageError, match="not the bundle's node image"):
        offline_node_image(bundle, docker)
    runner.script[0] = (runner.script[0][0], 0, "sha256:" + "3" * 64)  # pinned ref present
    assert offline_node_image(bundle, docker) == NODE_IMAGE


def test_the_bundle_saves_the_node_image_under_its_tag_with_its_id(tmp_path, runner) -> None:
    docker = HostDocker(Tools(runner=runner, which=dict(TOOLS)))
    runner.script[:] = [(("docker", "image", "inspect", "-f", "{{.Id}}"), 0, "sha256:abc\n")]
    (tmp_path / "images").mkdir()
    save_node_image(tmp_path, docker)
    assert ["docker", "tag", NODE_IMAGE, NODE_IMAGE_TAG] in runner.calls
    assert ["docker", "save", "-o", str(tarball(tmp_path, NODE_IMAGE)), NODE_IMAGE_TAG] in \
        runner.calls
    assert yaml.safe_load((tmp_path / NODE_IMAGE_RECORD).read_text()) == {
        "pinned": NODE_IMAGE, "tag": NODE_IMAGE_TAG, "id": "sha256:abc"}
