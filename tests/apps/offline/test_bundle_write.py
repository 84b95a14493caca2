"""`kfbox bundle` on this (networked) machine: one archive and its .sha256 whose manifest names,
digests and sizes every member; what goes in, and what `bundle` refuses before it starts."""

from __future__ import annotations

import re
import shutil
import tarfile
from pathlib import Path

import docker
import pytest

from kfbox import __version__
from kfbox.apps.offline.debs import BOOTSTRAP_PACKAGES, engine_packages, minbase
from kfbox.harness.certificate import __file__ as report_package
from kfbox.host.offline.archive import FIRST, read_manifest, verify
from kfbox.host.offline.manifest import COMPONENT_IMAGES, size_text
from kfbox.host.offline.target import this_host
from tests.support.cli import kfbox_cli
from tests.support.offline import WrittenBundle

DEV_ONLY = ("ruff", "testcontainers", "kmock", "kubernetes-validate", "torch", "jupyter-server")


@pytest.mark.e2e
def test_the_bundle_is_one_archive_its_manifest_digests(real_bundle: WrittenBundle,
                                                        docker_client: docker.DockerClient,
                                                        record_property) -> None:
    path = real_bundle.path
    manifest = read_manifest(path)
    sidecar = path.with_name(path.name + ".sha256").read_text()

    assert sidecar == f"{verify(path, manifest)}  {path.name}\n"  # every member, then the file
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert names[:len(FIRST)] == list(FIRST)  # bootstrap.sh first: `tar --occurrence` finds it
    assert names[-1].startswith("images/")
    assert set(names) - {"manifest.json"} == set(manifest.members)
    assert manifest.target == this_host()
    assert manifest.kfbox_version == __version__
    for name in COMPONENT_IMAGES:  # exactly the images this engine runs
        image = manifest.images[name]
        assert docker_client.images.get(image.tag).id == image.id
    stages = {deb.package: deb.stage for deb in manifest.debs}
    assert {stages[p] for p in BOOTSTRAP_PACKAGES} == {"bootstrap"}
    assert stages["docker.io"] == stages["debootstrap"] == "engine"
    assert set(engine_packages()) <= set(stages)  # some come with Python (ca-certificates)
    fresh = set(minbase(this_host()))  # nothing a fresh machine already has
    assert manifest.fresh.packages == len(fresh) and not fresh & set(stages)
    assert manifest.wheels["kfbox"] == __version__
    assert {"kubeflow", "kserve", "optuna", "ansible-core", "pytest"} <= set(manifest.wheels)
    assert not set(DEV_ONLY) & set(manifest.wheels)
    assert {"torch", "kserve", "jupyterlab", "kubeflow", "docker"} <= set(manifest.software)
    assert manifest.scenarios == ["diabetes", "digits"]
    assert manifest.verified is None
    record_property("bundle_bytes", path.stat().st_size)
    record_property("bundle_parts", {k: size_text(v) for k, v in manifest.sizes.items()})
    record_property("bundle_write_s", round(real_bundle.seconds, 1))
    print(f"bundle {size_text(path.stat().st_size)} ({manifest.sizes}) written in "
          f"{real_bundle.seconds:.0f}s")


@pytest.mark.e2e
def test_writing_shows_a_line_per_step_and_ends_with_the_size(real_bundle: WrittenBundle):
    steps = [line for line in real_bundle.stderr.splitlines() if line.startswith(" ✓ ")]
    assert [re.sub(r" \(\d+\.\ds\)$", "", s)[3:].split(":")[0] for s in steps[-4:]] == [
        f"Debian packages a fresh {this_host().describe()} lacks", "Wheels",
        f"Saving {len(COMPONENT_IMAGES)} images (docker save, gzip)",
        f"Writing {real_bundle.path.name}"]
    size = r"\d+(?:\.\d)? [kMG]B"  # size_text: 981 MB, 1.3 GB
    assert re.search(rf"^bundle: {re.escape(str(real_bundle.path))} \({size}: images {size}, "
                     rf"wheels {size}, debs {size}\), written in \d+m\d\ds$", real_bundle.stdout,
                     re.M), real_bundle.stdout
    assert f"tar -xf {real_bundle.path.name} --occurrence bootstrap.sh" in real_bundle.stdout
    assert "not verified: pass --verified-with" in real_bundle.stderr


@pytest.mark.parametrize("args, line", [
    (["--platform", "full"], "error: --platform is for --engine kind — a lite bundle always "
                             "holds the whole platform; drop it"),
    (["--engine", "kind"], "error: --engine kind needs --output FOLDER"),
    (["--engine", "kind", "-o", "x", "--verified-with", "y"],
     "error: --verified-with is for the lite engine"),
    (["-o", "nowhere/b.tar"], "error: --output 'nowhere/b.tar': no folder 'nowhere'"),
    (["-o", "b.zip"], "error: --output 'b.zip' does not end in .tar"),
    (["--verified-with", "missing"], "error: no results bundle at 'missing'"),
])
def test_bad_bundle_options_are_one_line_before_anything(args, line, tmp_path: Path) -> None:
    done = kfbox_cli("bundle", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(line), done.stderr
    assert list(tmp_path.iterdir()) == []


def test_verified_with_must_be_a_certified_lite_run(tmp_path: Path) -> None:
    """A certificate that is not certified names itself and the fix, before anything runs."""
    run = tmp_path / "run"
    run.mkdir()
    example = (Path(report_package).parent / "SCHEMA.md").read_text()
    report = example.split("```json\n", 1)[1].split("```", 1)[0]
    (run / "report.json").write_text(report.replace('"certified": true', '"certified": false'))
    for name in ("junit.xml", "report.html"):
        (run / name).write_text("")
    done = kfbox_cli("bundle", "--verified-with", str(run), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: --verified-with '{run}': profile 'core' is not "
                                  "certified there — pass the results of a certified run")
    shutil.rmtree(run)
    assert list(tmp_path.iterdir()) == []
