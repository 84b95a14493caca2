"""From the bundle to a certified sandbox on a fresh machine with no network at all: no route
out, every package index, mirror and proxy pointed at a trap that records any connection, no
Python, no Docker engine. The bootstrap installs Python from the bundle's packages and kfbox
from its wheels; `kfbox up --from-bundle` installs the engine from its packages and loads its
images; `kfbox certify` certifies it, naming the bundle's sha256; certificates compare."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import time
from pathlib import Path

import docker
import pytest

from kfbox.apps.offline.writer import check_verified, read_verification
from kfbox.host.offline.archive import read_manifest
from kfbox.host.offline.manifest import COMPONENT_IMAGES
from tests.support.cli import kfbox_cli, private_home
from tests.support.offline import WrittenBundle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _copy_out(container, source: str, dest: Path) -> None:
    stream, _ = container.get_archive(source)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        tar.extractall(dest)


def test_a_fresh_machine_with_no_network_is_certified_from_the_bundle(
        real_bundle: WrittenBundle, offline_machine, host_inotify, tmp_path: Path,
        record_property) -> None:
    bundle = f"/bundles/{real_bundle.path.name}"
    digest = real_bundle.path.with_name(real_bundle.path.name + ".sha256").read_text().split()[0]
    machine = offline_machine(real_bundle.path.parent, nested_engine=True)
    assert machine.run("command -v python3 || command -v docker")[0] != 0  # fresh: neither
    assert machine.run("getent hosts deb.debian.org || echo > /dev/tcp/1.1.1.1/80")[0] != 0

    timings: dict[str, float] = {}
    started = time.monotonic()
    out = machine.must(f"cd /root && tar -xf {bundle} --occurrence bootstrap.sh && "
                       f"sh bootstrap.sh {bundle}")
    timings["bootstrap"] = time.monotonic() - started
    assert " - installed " in out and "python3" in out  # Python came from the bundle
    assert f"next: kfbox up --from-bundle {bundle}" in out

    # The sandbox in the Docker engine this machine (a container) runs: a rootless engine in it
    # would need /dev/net/tun and an overlay filesystem this container cannot give it.
    machine.must("printf 'lite: {docker: host}\\n' > /root/kfbox.yaml")
    step = time.monotonic()
    out = machine.must(f"cd /root && kfbox up --from-bundle {bundle}")
    timings["up"] = time.monotonic() - step
    assert "Provision: docker engine" in out and f"Loading {len(COMPONENT_IMAGES)} images" in out
    assert "Building image" not in out and "Preparing base image" not in out
    print("\n".join(line for line in out.splitlines() if line.startswith(" ✓ ")))

    step = time.monotonic()
    out = machine.must("cd /root && kfbox certify --profile quick --out /root/results")
    timings["certify"] = time.monotonic() - step
    timings["fresh_to_certified"] = time.monotonic() - started
    assert "profile quick: CERTIFIED" in out
    code, second = machine.run("cd /root && kfbox certify --profile quick --scenario diabetes "
                               "--out /root/results")
    assert code == 0, second[-3000:]

    assert machine.fetches() == []  # nothing was fetched, nor tried
    images = machine.must("docker images --format '{{.Repository}}:{{.Tag}}'").split()
    manifest = read_manifest(real_bundle.path)
    assert {i for i in images if i.startswith("kfbox/")} == {
        image.tag for image in manifest.images.values()}  # nothing was built

    _copy_out(machine.container, "/root/results", tmp_path)
    runs = sorted(p for p in (tmp_path / "results").iterdir()
                  if p.is_dir() and not p.name.endswith(".workspace"))
    reports = [json.loads((run / "report.json").read_text()) for run in runs]
    for report in reports:
        assert report["certified"], report["verdicts"]
        assert report["configuration"]["source"] == "bundle"
        assert report["configuration"]["bundle"] == digest
    assert [r["configuration"]["scenario"] for r in reports] == ["digits", "diabetes"]

    # The classroom check, on this host: the same certificate (folder and tarball) is identical;
    # another scenario from the same bundle differs in exactly that.
    first, other = runs
    wide = {"COLUMNS": "200"}  # the table as a wide terminal shows it
    same = kfbox_cli("results", "--compare", str(first), f"{first}.tar.gz", env=wide)
    assert same.returncode == 0, same.stdout + same.stderr
    assert f"identical: offline bundle {digest[:16]}…, quick certified" in same.stdout
    differ = kfbox_cli("results", "--compare", str(first), str(other), env=wide)
    assert differ.returncode == 1, differ.stdout + differ.stderr
    assert "configuration.scenario │ digits" in differ.stdout
    assert "bundle " not in differ.stdout.split("differ", 1)[1]  # the same bundle

    # The certificate is one a bundle of exactly these images can name as its verification.
    verified, certified = read_verification(first)
    check_verified(first, certified, manifest.images)
    assert verified.certified and verified.profile == "quick"

    for name, seconds in timings.items():
        record_property(f"{name}_s", round(seconds, 1))
    print("offline install: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))


def test_a_truncated_real_bundle_is_refused_before_anything(
        real_bundle: WrittenBundle, docker_client: docker.DockerClient, tmp_path: Path) -> None:
    copy = tmp_path / real_bundle.path.name
    shutil.copyfile(real_bundle.path, copy)
    with copy.open("r+b") as handle:
        handle.truncate(copy.stat().st_size // 2)
    home = private_home(tmp_path / "home")
    started = int(time.time())
    done = kfbox_cli("--name", "truncated", "up", "--from-bundle", str(copy),
                     env={"KFBOX_HOME": str(home), "TMPDIR": str(tmp_path)})
    assert done.returncode == 2
    assert "is truncated (the file ends early) — copy the bundle again" in done.stderr
    # No image loaded: the engine's own record, not its image list, which tests running beside
    # this one (bin/run-tests) change with their builds.
    loaded = list(docker_client.events(since=started, until=int(time.time()) + 1, decode=True,
                                       filters={"type": "image", "event": ["load", "import"]}))
    assert loaded == []
    assert not (home / "sandboxes").exists()
