"""Provisioning test fixtures: a Docker engine, and a fresh Debian container to provision."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import DockerException

from kfbox.host.docker_engine import LABEL
from kfbox.host.images.base import ensure_base_image
from kfbox.host.progress import quiet_reporter
from kfbox.host.provision.runner import Target
from tests.support.ci import unreachable

# testcontainers reads its settings at import: Ryuk's image cannot be pulled here, and the
# fixture removes what it creates itself.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
from testcontainers.core.container import DockerContainer

CONNECTION_PLUGINS = Path(__file__).parent / "connection_plugins"


@pytest.fixture
def engine() -> docker.DockerClient:
    """The host's Docker engine; under CI=true its absence fails the test instead of skipping."""
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except DockerException as exc:
        unreachable(f"no Docker engine answers: {str(exc).splitlines()[0]}")
    return client


@pytest.fixture
def sandbox_label(request: pytest.FixtureRequest) -> str:
    """A unique value for the kfbox.sandbox label of everything this test creates."""
    name = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")
    return f"{name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def debian_host(
    engine: docker.DockerClient, sandbox_label: str, host_inotify: None
) -> Iterator[str]:
    """A running container from kfbox's Debian base image (no Docker in it), named and labelled
    `sandbox_label`; removed with its volumes afterwards, however the test ends."""
    image = ensure_base_image(quiet_reporter(), engine)
    container = DockerContainer(
        image,
        command="sleep infinity",
        name=sandbox_label,
        labels={LABEL: sandbox_label},
        init=True,  # reaps the processes the playbook's commands leave behind
        # --privileged fails on engines that lack CAP_SYS_RESOURCE themselves (as on this
        # project's build machine); every other capability plus unconfined profiles is what
        # dockerd needs.
        cap_add=["ALL"],
        cap_drop=["SYS_RESOURCE"],
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
    )
    # overlay2 cannot stack on the container's own overlay root; tmpfs also leaves no volume.
    container.tmpfs["/var/lib/docker"] = "size=2g"
    try:
        with container:
            # A host's /proc/sys is writable; the engine API cannot ask for that
            # (`systempaths=unconfined` is a CLI-only option), so remount it as a host has it.
            code, output = container.exec("mount -o remount,rw,bind /proc/sys")
            assert code == 0, output.decode()
            yield sandbox_label
    finally:
        left = engine.containers.list(
            ignore_removed=True, all=True, filters={"label": f"{LABEL}={sandbox_label}"})
        for leftover in left:
            leftover.remove(force=True, v=True)


@pytest.fixture
def debian_target(debian_host: str) -> Target:
    """`debian_host` as an ansible inventory host, reached through the kfbox_docker plugin."""
    return Target(
        host=debian_host,
        hostvars={
            "ansible_connection": "kfbox_docker",
            "ansible_python_interpreter": "/usr/bin/python3",
        },
        envvars={"ANSIBLE_CONNECTION_PLUGINS": str(CONNECTION_PLUGINS)},
    )
