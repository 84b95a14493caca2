"""The wheelhouse served to an image build (kfbox/host/images/wheelserver.py): a build on its
network installs from it with the component images' own installer script, the wheels never land
in a layer, and the server and its network are gone afterwards, a failed build included."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from kfbox.host.images.base import ensure_base_image
from kfbox.host.images.build import INSTALLER, wheels_for
from kfbox.host.images.dockerbuild import ImageBuildError, docker_build
from kfbox.host.images.wheelhouse import INSTALLER as UV
from kfbox.host.images.wheelserver import BUILD_LABEL
from kfbox.host.progress import quiet_reporter

pytestmark = pytest.mark.e2e
TAG = "kfbox-test/wheelserver:latest"


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """uv and one small pure-Python wheel, fetched the way kfbox fetches a wheelhouse."""
    folder = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                    "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
                    "-d", str(folder), UV, "six"], check=True)
    return folder


def build(client, context: Path, wheelhouse: Path, base: str) -> None:
    with wheels_for(client, wheelhouse, base, TAG) as (network, args):
        docker_build(client, context, TAG, buildargs={"BASE_IMAGE": base, **args},
                     network=network)


def leftovers(client: docker.DockerClient) -> list[str]:
    return ([c.name for c in client.containers.list(
        ignore_removed=True, all=True, filters={"label": BUILD_LABEL})]
            + [n.name for n in client.networks.list(filters={"label": BUILD_LABEL})])


def context_with(folder: Path, requirement: str) -> Path:
    folder.mkdir()
    shutil.copy2(INSTALLER, folder / INSTALLER.name)
    (folder / "requirements.txt").write_text(requirement + "\n")
    (folder / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG WHEELS_HOST\nARG WHEELS_PORT\n"
        "COPY install-wheels requirements.txt /tmp/kfbox/\n"
        'RUN /tmp/kfbox/install-wheels "$WHEELS_HOST" "$WHEELS_PORT" '
        "/tmp/kfbox/requirements.txt && rm -rf /tmp/kfbox\n")
    return folder


def test_a_build_installs_from_the_served_wheelhouse_and_leaves_nothing(
    docker_client: docker.DockerClient, wheelhouse: Path, tmp_path: Path
) -> None:
    base = ensure_base_image(quiet_reporter(), docker_client)
    try:
        build(docker_client, context_with(tmp_path / "ok", "six"), wheelhouse, base)
        out = docker_client.containers.run(
            TAG, ["sh", "-c", "python3 -c 'import six; print(six.__file__)'; "
                              "ls /tmp/uv /root/.cache 2>&1; command -v uv || echo no-uv"],
            remove=True, network_mode="none").decode()
        assert "/usr/local/lib/python3.11/dist-packages/six.py" in out
        assert "no-uv" in out  # the installer came from the wheelhouse and went
        history = " ".join(layer.get("CreatedBy", "")
                           for layer in docker_client.images.get(TAG).history())
        assert ".whl" not in history
    finally:
        docker_client.images.remove(TAG, force=True)
    assert leftovers(docker_client) == []


def test_a_failed_build_leaves_no_server_or_network(
    docker_client: docker.DockerClient, wheelhouse: Path, tmp_path: Path
) -> None:
    base = ensure_base_image(quiet_reporter(), docker_client)
    with pytest.raises(ImageBuildError):
        build(docker_client, context_with(tmp_path / "bad", "no-such-package-x"), wheelhouse,
              base)
    assert leftovers(docker_client) == []


def test_a_build_starting_beside_keeps_its_network(
    docker_client: docker.DockerClient, wheelhouse: Path
) -> None:
    """Another kfbox building at the same moment: its network, made an instant ago and with no
    server on it yet, is not taken for a killed build's by this build's sweep."""
    starting = docker_client.networks.create(f"kfbox-build-test-{secrets.token_hex(3)}",
                                             internal=True, labels={BUILD_LABEL: TAG})
    try:
        with wheels_for(docker_client, wheelhouse, ensure_base_image(quiet_reporter(),
                                                                     docker_client), TAG):
            pass
        starting.reload()  # still there: NotFound otherwise
    finally:
        starting.remove()
    assert leftovers(docker_client) == []
