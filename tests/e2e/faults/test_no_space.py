"""No space left where Docker keeps images and volumes: `up` says which work needs how much,
in one line, before it makes anything (no image built, nothing labelled, no state); a disk that
fills anyway during a push is one line naming where."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
import requests

from kfbox.cli import main
from kfbox.engines.lite.components import volume_name
from kfbox.engines.lite.engine import DATA_LABEL
from kfbox.engines.lite.images import LiteImages
from kfbox.engines.platform import StepFailure
from kfbox.host import diskspace
from kfbox.host.docker_engine import LABEL
from kfbox.host.images.base import base_tag
from kfbox.host.images.build import ensure_component_image
from kfbox.host.progress import quiet_reporter
from tests.support.faults import Box
from tests.support.sandboxes import labelled

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
FREE = 0.4


@pytest.fixture(scope="module")
def component_images(docker_client: docker.DockerClient) -> None:
    """The images every sandbox runs, built while there is room (the checks under test are
    the seed's and a new build's, not the first build's)."""
    for component in ("registry", "jupyter", "tracking", "runtime"):
        ensure_component_image(component, quiet_reporter(), docker_client)


@pytest.fixture
def little_space(component_images: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diskspace, "free_bytes", lambda path: int(FREE * diskspace.GIB))


def refused(box: Box, capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as done:
        main(["--config", str(box.config), "up", *args])
    assert done.value.code == 3
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_new_sandbox_without_room_for_its_registry(
    box: Box, docker_client: docker.DockerClient, little_space, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("KFBOX_HOME", str(box.home))
    root = diskspace.data_root(docker_client)
    assert refused(box, capsys) == (
        f"error: seeding a new registry with the ML runtime needs about 1.0 GiB free in "
        f"{root}; {FREE} GiB is free — {diskspace.FIX}")
    assert labelled(docker_client, box.name) == []
    assert not box.state.exists()


def test_an_image_build_without_room(
    box: Box, docker_client: docker.DockerClient, little_space, capsys, monkeypatch,
    tmp_path: Path,
) -> None:
    """Another CA bundle makes new component images (the bundle is one of their inputs)."""
    monkeypatch.setenv("KFBOX_HOME", str(box.home))
    bundle = tmp_path / "corporate-ca.pem"
    bundle.write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text() + "# another CA\n")
    before = {image.id for image in docker_client.images.list()}
    line = refused(box, capsys, "--ca-bundle", str(bundle))
    assert line.startswith("error: building image kfbox/registry:")
    assert f"needs about 0.5 GiB free in {diskspace.data_root(docker_client)}; {FREE} GiB" in line
    assert {image.id for image in docker_client.images.list()} <= before
    assert labelled(docker_client, box.name) == []
    assert not box.state.exists()


REGISTRY_ROOM = "64m"
"""The registry's own disk: room for an upload's bookkeeping, not for the runtime's layers."""


def test_a_registry_whose_disk_fills_during_a_push(
    box: Box, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    """A real full disk: the registry's volume is a 64 MiB tmpfs made before `up`, which keeps
    it, so the seed's push fills it. The engine reports only the registry's HTTP 500; the line
    comes from the registry's log. No tag is left half-pushed, and a journey's push after it
    says the same."""
    docker_client.volumes.create(
        volume_name(box.name, "registry"), driver="local",
        driver_opts={"type": "tmpfs", "device": "tmpfs", "o": f"size={REGISTRY_ROOM}"},
        labels={LABEL: box.name, DATA_LABEL: "registry"})
    storage = docker_client.volumes.get(volume_name(box.name, "registry")).attrs["Mountpoint"]

    up = box.kfbox("up")
    assert up.returncode == 3, up.stdout + up.stderr
    assert "Traceback" not in up.stdout + up.stderr
    assert up.stderr.strip().splitlines()[-1] == (
        f"error: seeding the sandbox registry ran out of space in {storage} (no space left on "
        f"device) — {diskspace.FIX}")
    registry = f"127.0.0.1:{box.ports['registry']}"
    for repository in requests.get(f"http://{registry}/v2/_catalog", timeout=10).json()[
            "repositories"]:
        tags = requests.get(f"http://{registry}/v2/{repository}/tags/list", timeout=10)
        assert not (tags.ok and tags.json().get("tags")), f"{repository} has {tags.text}"

    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {base_tag()}\nLABEL kfbox.test=full-registry\n")
    images = LiteImages(docker_client, box.name, registry, "full", {LABEL: box.name})
    with pytest.raises(StepFailure) as caught:
        images.build(context, "journey", build_args={})
    assert str(caught.value) == (
        f"pushing {registry}/journey to the sandbox registry ran out of space in {storage} "
        f"(no space left on device) — {diskspace.FIX}")

    down = box.kfbox("down")
    assert down.returncode == 0, down.stderr
    assert labelled(docker_client, box.name) == []
