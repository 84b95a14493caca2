"""A wheelhouse served to an image build over a private network, so the build's installer
reaches the wheels without them ever being in a layer: one stage, one layer of installed files,
no multi-GB copy between stages and no wheel bytes in the image."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import docker
from docker.errors import APIError, NotFound

BUILD_LABEL = "kfbox.build"
"""On a build's wheel server and network: the image being built."""
PORT = 8000
LIFETIME_S = 3600
"""A wheel server ends itself after this long, should its build be killed before removing it."""


STARTING_S = 120
"""A build network younger than this may be another build's, made a moment before its server
joins it (a second `kfbox` building at the same time): it is left alone."""


def _remove_idle_networks(client: docker.DockerClient) -> None:
    """Networks of builds that were killed: a network still in use refuses, and stays."""
    now = datetime.now(UTC)
    for network in client.networks.list(filters={"label": BUILD_LABEL}):
        created = datetime.fromisoformat(network.attrs["Created"])
        if (now - created).total_seconds() < STARTING_S:
            continue
        with contextlib.suppress(APIError, NotFound):
            network.remove()


@contextlib.contextmanager
def serving(client: docker.DockerClient, wheelhouse: Path, image: str,
            tag: str) -> Iterator[tuple[str, str]]:
    """(network, host): a build on that network installs from http://host:PORT/ (the server's
    name, which its installer must trust for plain HTTP); both removed afterwards."""
    _remove_idle_networks(client)
    name = f"kfbox-build-{secrets.token_hex(4)}"
    labels = {BUILD_LABEL: tag}
    network = client.networks.create(name, driver="bridge", internal=True, labels=labels)
    try:
        server = client.containers.run(
            image,
            ["timeout", str(LIFETIME_S), "python3", "-m", "http.server", str(PORT),
             "--directory", "/wheels"],
            name=name, detach=True, auto_remove=True, labels=labels,
            network=name, volumes={str(wheelhouse): {"bind": "/wheels", "mode": "ro"}},
        )
        try:
            yield name, name
        finally:
            with contextlib.suppress(NotFound, APIError):
                server.remove(force=True)
    finally:
        with contextlib.suppress(NotFound, APIError):
            network.remove()
