"""`kfbox up` killed (SIGKILL: no clean-up of its own) at each point of its work: before
anything, during an image build, making the network and volumes, starting the components, and
seeding the registry. The next `up` brings a working sandbox (the notebook opens with a token),
and `down` then leaves nothing: nothing labelled, no state folder, no registry tags."""

from __future__ import annotations

import time

import docker
import pytest

from kfbox.host.images.base import IMAGE_LABEL
from tests.support.faults import Box, read_until
from tests.support.sandboxes import labelled

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

KILL_AT = {
    "before-anything": None,
    "image-build": "· Building image kfbox/registry",
    "network-and-volumes": "· Network and volumes",
    "components": "· Component jupyter",
    "registry-seed": "· Seeding the registry",
}
"""Where to kill: right away, or when `up` says it started this step."""


def rebuild_registry_image(client: docker.DockerClient) -> None:
    """Untag the (small) registry image so `up` builds it again: a build to be killed in.
    Containers using it keep running (the image stays, only its tag goes)."""
    for image in client.images.list(filters={"label": f"{IMAGE_LABEL}=registry"}):
        for tag in image.tags:
            client.images.remove(tag, force=True)


@pytest.mark.parametrize("point", KILL_AT, ids=KILL_AT)
def test_the_next_up_repairs_and_down_leaves_nothing(
    box: Box, docker_client: docker.DockerClient, point: str
) -> None:
    if point == "image-build":
        rebuild_registry_image(docker_client)
    killed = box.start("up")
    marker = KILL_AT[point]
    if marker is None:
        time.sleep(0.5)
    else:
        read_until(killed, marker)
    killed.kill()
    killed.wait()

    again = box.kfbox("up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert box.running()
    assert len(box.token()) == 48  # never an empty token: that would open the notebook server
    assert box.jupyter("/api/status").status_code == 200

    down = box.kfbox("down")
    assert down.returncode == 0, down.stderr
    assert labelled(docker_client, box.name) == []
    assert not box.state.exists()
    prefix = f"127.0.0.1:{box.ports['registry']}/"
    assert not [t for i in docker_client.images.list() for t in i.tags if t.startswith(prefix)]
