"""No space left where Docker keeps images and volumes: `up` says which work needs how much,
in one line, before it makes anything (no image built, nothing labelled, no state)."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from kfbox.sandbox import diskspace
from kfbox.sandbox.cli import main
from tests.e2e.conftest import labelled
from tests.e2e.faults.conftest import Box

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
FREE = 0.4


@pytest.fixture
def little_space(monkeypatch: pytest.MonkeyPatch) -> None:
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
