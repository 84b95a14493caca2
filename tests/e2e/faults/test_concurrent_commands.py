"""Two lifecycle commands on one sandbox at once: the second waits for the first, saying so;
never a half-made sandbox nor a broken state file."""

from __future__ import annotations

import json

import docker
import pytest

from tests.support.faults import Box, finish, read_until
from tests.support.sandboxes import labelled

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


def test_two_ups_at_once_make_one_sandbox(box: Box) -> None:
    first = box.start("up")
    read_until(first, "· Network and volumes")  # it holds the sandbox now
    second = box.start("up")
    code, said_first = finish(first)
    assert code == 0, said_first
    code, said_second = finish(second)
    assert code == 0, said_second
    assert f"sandbox {box.name!r} is busy (`kfbox up` (pid {first.pid})); waiting for it" in \
        said_second
    # The second found everything made: it changed nothing.
    assert "registry: unchanged" in said_second and "jupyter: unchanged" in said_second
    for name in ("spec.json", "state.json"):
        json.loads((box.state / name).read_text())  # whole, never half-written
    assert box.running()
    assert box.kfbox("down").returncode == 0


def test_down_during_up_waits_then_leaves_nothing(
    box: Box, docker_client: docker.DockerClient
) -> None:
    up = box.start("up")
    read_until(up, "· Component registry")
    down = box.start("down")
    code, said_up = finish(up)
    assert code == 0, said_up
    code, said_down = finish(down)
    assert code == 0, said_down
    assert "is busy (`kfbox up`" in said_down
    assert labelled(docker_client, box.name) == []
    assert not box.state.exists()
