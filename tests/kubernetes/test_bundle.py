"""The offline bundle: `kfbox bundle` (write_bundle) from fixture manifests served on 127.0.0.1,
then `kfbox up --from-bundle` with that server gone, against the API double (kmock subclass).
Verified here: manifests stored by sha256, a lock with every hash filled (trust-on-first-use
included), the image list, tarballs only for images the host has or can pull, refusal of a
manifest the bundle lacks, and the kind bring-up loading the bundle's images (docker and kind
checked as commands by a recording runner). Only on a real host: docker pull/save/load and
`kind load` moving real images, and the real upstream manifests."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml
from manifests_server import serve_dir

from kfbox.sandbox.config import SandboxSpec
from kfbox.sandbox.engines.kubernetes.bundle import load_bundle, write_bundle
from kfbox.sandbox.engines.kubernetes.catalog import parse_lock
from kfbox.sandbox.engines.kubernetes.engine import KubernetesEngine
from kfbox.sandbox.engines.kubernetes.installer import Installer
from kfbox.sandbox.engines.kubernetes.store import ManifestStore
from kfbox.sandbox.engines.kubernetes.tools import Tools
from kfbox.sandbox.errors import UsageError
from kfbox.sandbox.progress import quiet_reporter

FIXTURES = Path(__file__).parent / "fixtures"
TOOLS = {"docker": "/usr/bin/docker", "kind": "/usr/local/bin/kind", "kubectl": "/usr/bin/kubectl"}


def sha(name: str) -> str:
    return hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()


def lock(base: str) -> dict:
    """widgets pinned in the lock; gadgets unpinned (learned on first use)."""
    return {
        "schema": 1,
        "components": {
            "widgets": {
                "version": "v1", "min_kubernetes": "1.30", "depends": [],
                "manifests": [{"url": f"{base}/widgets.yaml", "sha256": sha("widgets.yaml")}],
                "ready": {"crds": ["widgets.example.kfbox.dev"],
                          "deployments": ["widgets-system/widgets-controller"]},
            },
            "gadgets": {
                "version": "v2", "min_kubernetes": "1.25", "depends": ["widgets"],
                "manifests": [{"url": f"{base}/gadgets.yaml", "sha256": None}],
                "ready": {"deployments": ["widgets-system/gadgets"]},
            },
            "unused": {
                "version": "v0", "min_kubernetes": "1.25", "depends": [],
                "manifests": [{"url": f"{base}/absent.yaml", "sha256": None}],
            },
        },
        "profiles": {"core": ["gadgets"], "full": ["gadgets", "unused"]},
    }


@pytest.fixture
def bundle(tmp_path, runner) -> Path:
    """A bundle written from manifests served on 127.0.0.1; the server is gone afterwards.
    The host has widgets' image; gadgets' cannot be pulled here."""
    served = tmp_path / "served"
    shutil.copytree(FIXTURES, served)
    runner.script += [
        (("docker", "image", "inspect", "example.invalid/widgets:v1"), 0, "[{}]"),
        (("docker", "image", "inspect"), 1, "No such image"),
        (("docker", "pull"), 1, "pull access denied"),
    ]
    dest = tmp_path / "bundle"
    with serve_dir(served) as base:
        catalog = parse_lock(lock(base))
        store = ManifestStore(tmp_path / "cache", Tools(runner=runner, which=dict(TOOLS)),
                              trust_on_first_use=True)
        store.cache.mkdir()
        missing = write_bundle(dest, catalog, catalog.plan(catalog.profile("core", gpu=False)),
                               store, store.tools, quiet_reporter())
    shutil.rmtree(served)
    assert missing == ["example.invalid/gadgets:v1"]
    return dest


def test_bundle_holds_verified_manifests_a_full_lock_and_the_images(bundle, runner) -> None:
    assert sorted(p.name for p in (bundle / "manifests").iterdir()) == sorted(
        [f"{sha('widgets.yaml')}.yaml", f"{sha('gadgets.yaml')}.yaml"])
    written = yaml.safe_load((bundle / "components.lock.yaml").read_text())
    assert set(written["components"]) == {"widgets", "gadgets"}  # the plan only
    assert written["profiles"] == {"core": ["gadgets"], "full": ["gadgets"]}
    hashes = {name: comp["manifests"][0]["sha256"] for name, comp in
              written["components"].items()}
    assert hashes == {"widgets": sha("widgets.yaml"), "gadgets": sha("gadgets.yaml")}
    assert (bundle / "images.txt").read_text().split() == [
        "example.invalid/gadgets:v1", "example.invalid/widgets:v1"]
    tar = str(bundle / "images" / "example.invalid_widgets_v1.tar")
    assert runner.commands("docker") == [
        ["docker", "image", "inspect", "example.invalid/gadgets:v1"],
        ["docker", "pull", "example.invalid/gadgets:v1"],
        ["docker", "image", "inspect", "example.invalid/widgets:v1"],
        ["docker", "save", "-o", tar, "example.invalid/widgets:v1"],
    ]


def test_install_from_the_bundle_needs_no_network(bundle, kubeflow, tmp_path, runner) -> None:
    catalog = load_bundle(bundle, Tools(runner=runner, which=dict(TOOLS)), quiet_reporter())
    store = ManifestStore(tmp_path / "empty-cache", Tools(), offline=bundle / "manifests")
    store.cache.mkdir()
    results = Installer(kubeflow.kube, store, {}, quiet_reporter(), ready_timeout_s=3,
                        poll_s=0.05).install(catalog.plan(catalog.profile("core", gpu=False)))
    assert [r.component for r in results] == ["widgets", "gadgets"]
    assert kubeflow.double.get("apps/v1", "deployments", "widgets-system", "gadgets")
    assert not list(store.cache.iterdir())  # nothing fetched or cached: the bundle served all


def test_a_manifest_missing_from_the_bundle_is_refused(bundle, tmp_path) -> None:
    (bundle / "manifests" / f"{sha('gadgets.yaml')}.yaml").unlink()
    catalog = load_bundle(bundle, Tools(), quiet_reporter())
    store = ManifestStore(tmp_path / "c", Tools(), offline=bundle / "manifests")
    store.cache.mkdir()
    with pytest.raises(UsageError, match=r"the bundle has no manifest for http://127\.0\.0\.1:"
                                         r"\d+/gadgets\.yaml"):
        store.read(catalog.components["gadgets"].manifests[0])


def test_not_a_bundle_is_one_line(tmp_path) -> None:
    with pytest.raises(UsageError, match="is not a kfbox bundle"):
        load_bundle(tmp_path, Tools(), quiet_reporter())


def test_kind_up_from_bundle_loads_its_images_then_installs_offline(
        bundle, kubeflow, tmp_path, monkeypatch, runner) -> None:
    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    tar = bundle / "images" / "example.invalid_widgets_v1.tar"
    tar.write_bytes(b"")  # what `docker save` wrote (the recording runner wrote nothing)
    runner.calls.clear()
    runner.script[:] = [
        (("kind", "get", "clusters"), 0, ""),
        (("kind", "get", "kubeconfig"), 0, "apiVersion: v1\nkind: Config\n"),
        (("kind", "get", "nodes"), 0, "box-control-plane\n"),
        (("docker", "inspect", "-f", "{{.State.Running}}"), 0, "true\n"),
        (("docker", "inspect"), 0, '{"kind":{}}'),
    ]
    spec = SandboxSpec(name="box", engine="kind", from_bundle=bundle, gpu="off")
    engine = KubernetesEngine(spec, tools=Tools(runner=runner, which=dict(TOOLS)),
                              kube=kubeflow.kube)
    engine.up(quiet_reporter())
    assert ["docker", "load", "-i", str(tar)] in runner.calls
    loads = [c for c in runner.calls if c[:3] == ["kind", "load", "docker-image"]]
    assert loads == [["kind", "load", "docker-image", image, "--name", "box"]
                     for image in ("example.invalid/gadgets:v1", "example.invalid/widgets:v1")]
    create = runner.calls.index(next(c for c in runner.calls if c[:3] == ["kind", "create",
                                                                          "cluster"]))
    assert runner.calls.index(loads[0]) > create  # nodes exist before images go into them
    assert kubeflow.double.get("apps/v1", "deployments", "widgets-system", "gadgets")
    assert engine.recorded()["components"] == ["widgets", "gadgets"]
