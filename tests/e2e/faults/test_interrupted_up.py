"""The registry cache a rootless `up` has the host's engine make: made for real (a throwaway
registry, the host engine's push, each layer paired with its blob), and Ctrl-C while it is
being made: `up` stops at once (exit 130) and leaves neither the throwaway registry, nor a
half-written cache, nor a tag naming it, and `down` then leaves nothing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import docker
import pytest
import yaml

from kfbox.engines.lite import registry_cache
from kfbox.engines.lite.components import container_name
from kfbox.host.docker_engine import LABEL
from kfbox.host.images.base import base_tag
from kfbox.host.images.build import ensure_component_image
from kfbox.host.progress import quiet_reporter
from kfbox.host.rootless_docker import find_rootless_docker
from tests.support.faults import Box, finish, interrupt, read_until
from tests.support.net import sandbox_ports
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
            if re.match(r"127\.0\.0\.1:\d+/kfbox/", t)]


def test_ctrl_c_while_the_cache_is_made_leaves_nothing_behind(
    docker_client: docker.DockerClient, own_engine: SuiteEngine, tmp_path: Path
) -> None:
    name = sandbox_name("cache")
    ports = sandbox_ports()
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

        down = box.kfbox("down")
        assert down.returncode == 0, down.stderr[-2000:]
        assert find_rootless_docker(name) is None
        assert labelled(docker_client, name) == []
    finally:
        box.kfbox("down")
        remove_labelled(docker_client, name)


def test_the_hosts_engine_makes_the_cache_and_each_layer_is_paired_with_its_blob(
    docker_client: docker.DockerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made from the (small) base image here: the same code as for the runtime."""
    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    name = sandbox_name("cache")
    image = base_tag()
    image_id = docker_client.images.get(image).id
    registry = ensure_component_image("registry", quiet_reporter(), docker_client)
    tags_before = throwaway_tags(docker_client)
    try:
        cached = registry_cache.build(docker_client, image, image_id, registry,
                                      container_name(name, "registry-cache"), {LABEL: name})
        assert cached == registry_cache.cache_path(image_id) and cached.is_dir()
        assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no partial left
        pairs = registry_cache.layers(image_id, image.rsplit(":", 1)[0])
        assert [diff_id for diff_id, _ in pairs] == \
            docker_client.images.get(image).attrs["RootFS"]["Layers"]
        blobs = cached / registry_cache.V2 / "blobs/sha256"
        for _, blob in pairs:  # each a compressed blob the registry stored
            hexa = blob.split(":")[1]
            assert (blobs / hexa[:2] / hexa / "data").is_file()
        assert labelled(docker_client, name) == []
        assert throwaway_tags(docker_client) == tags_before
    finally:
        remove_labelled(docker_client, name)
