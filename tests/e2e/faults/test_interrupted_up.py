"""Ctrl-C during a rootless sandbox's first `up` on a host with no registry cache yet, while the
host's engine compresses the runtime's layers for it beside the copy of the images: `up` stops
at once (exit 130), and leaves neither the throwaway registry, nor a half-written cache, nor a
tag naming it; the next `up` makes the cache and seeds the registry from it, and `down` leaves
nothing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import docker
import pytest
import yaml

from kfbox.engines.lite.components import container_name
from kfbox.host.rootless_docker import find_rootless_docker
from tests.support.faults import Box, finish, interrupt, read_until
from tests.support.net import free_port
from tests.support.sandboxes import labelled, remove_labelled, sandbox_name
from tests.support.suite_engine import SuiteEngine

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
ABANDONED_WITHIN_S = 60
"""Generous: the push stops at its next progress event, and the engine removes its registry."""


def home_without_registry_cache(home: Path) -> Path:
    """A private KFBOX_HOME sharing every cache but the registry's (images and wheels are big;
    the registry cache must be missing for `up` to make it)."""
    shared = Path.home() / ".kfbox" / "cache"
    (home / "cache").mkdir(parents=True)
    for entry in shared.iterdir():
        if entry.name != "registry":
            (home / "cache" / entry.name).symlink_to(entry)
    return home


def throwaway_tags(client: docker.DockerClient) -> list[str]:
    return [t for image in client.images.list() for t in image.tags
            if re.match(r"127\.0\.0\.1:\d+/kfbox/runtime:", t)]


def test_ctrl_c_while_the_cache_is_made_leaves_nothing_and_the_next_up_makes_it(
    docker_client: docker.DockerClient, own_engine: SuiteEngine, tmp_path: Path
) -> None:
    name = sandbox_name("cache")
    ports = {"jupyter": free_port(), "registry": free_port(), "tracking": free_port()}
    config = tmp_path / "kfbox.yaml"
    config.write_text(yaml.safe_dump({"name": name, "ports": ports}))  # rootless: the default
    box = Box(name, home_without_registry_cache(tmp_path / "home"), config, ports,
              own_engine.host)
    cache = box.home / "cache" / "registry"
    tags_before = throwaway_tags(docker_client)
    try:
        run = box.start("up")
        read_until(run, "· Caching the ML runtime's compressed layers")
        time.sleep(3)  # the push under way
        assert container_name(name, "registry-cache") in {
            c.name for c in docker_client.containers.list()}
        interrupt(run)
        started = time.monotonic()
        code, output = finish(run, timeout_s=ABANDONED_WITHIN_S)
        assert code == 130, output[-3000:]
        print(f"\nup stopped {time.monotonic() - started:.1f} s after Ctrl-C")
        assert labelled(docker_client, name) == []  # the throwaway registry is gone
        assert not cache.exists() or list(cache.iterdir()) == []
        assert throwaway_tags(docker_client) == tags_before

        again = box.kfbox("up")
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
        said = again.stdout + again.stderr
        assert re.search(r"the ML runtime's layers: 0 sent, [1-9]\d* already there", said), said
        assert [p.name for p in cache.iterdir()] == [
            docker_client.images.get(yaml.safe_load(
                (box.state / "state.json").read_text())["runtime_image"]).id.replace(":", "-")]
        down = box.kfbox("down")
        assert down.returncode == 0, down.stderr[-2000:]
        assert find_rootless_docker(name) is None
        assert labelled(docker_client, name) == []
    finally:
        box.kfbox("down")
        remove_labelled(docker_client, name)
