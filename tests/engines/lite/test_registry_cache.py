"""The host's registry cache read as a registry stores it: each layer's diff id paired with its
compressed blob, a cache of another image refused, and a folder aside whose writer is gone
removed (engine-free)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from kfbox.engines.lite import registry_cache
from kfbox.host.errors import KfboxError


def _put(v2: Path, body: bytes) -> str:
    digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
    hexa = digest.split(":")[1]
    blob = v2 / "blobs" / "sha256" / hexa[:2] / hexa / "data"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(body)
    return digest


def _storage(root: Path, diff_ids: list[str], blobs: list[str], config_of: str = "") -> str:
    """A registry's storage (distribution's filesystem layout) holding one image of
    `kfbox/runtime`; returns the image id (its config's digest)."""
    v2 = root / "docker/registry/v2"
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    image_id = _put(v2, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "config": {"digest": config_of or image_id},
        "layers": [{"digest": d} for d in blobs],
    }).encode()
    link = v2 / "repositories/kfbox/runtime/_manifests/tags/abc/current/link"
    link.parent.mkdir(parents=True)
    link.write_text(_put(v2, manifest))
    return image_id


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KFBOX_HOME", str(tmp_path))
    return tmp_path


def test_each_layer_is_its_diff_id_and_its_blob_bottom_first(cache_home: Path) -> None:
    diff_ids = [f"sha256:{c * 64}" for c in "123"]
    blobs = [f"sha256:{c * 64}" for c in "abc"]
    image_id = _storage(cache_home / "stage", diff_ids, blobs)
    (cache_home / "stage").rename(registry_cache.cache_path(image_id))
    assert registry_cache.layers(image_id, "kfbox/runtime") == list(zip(diff_ids, blobs,
                                                                        strict=True))


def test_a_cache_holding_another_image_teaches_nothing(cache_home: Path) -> None:
    other = f"sha256:{'9' * 64}"
    image_id = _storage(cache_home / "stage", [f"sha256:{'1' * 64}"], [f"sha256:{'a' * 64}"],
                        config_of=other)
    (cache_home / "stage").rename(registry_cache.cache_path(image_id))
    with pytest.raises(KfboxError, match="holds another image"):
        registry_cache.layers(image_id, "kfbox/runtime")


def test_a_manifest_and_config_that_disagree_teach_nothing(cache_home: Path) -> None:
    image_id = _storage(cache_home / "stage", [f"sha256:{'1' * 64}"],
                        [f"sha256:{'a' * 64}", f"sha256:{'b' * 64}"])
    (cache_home / "stage").rename(registry_cache.cache_path(image_id))
    with pytest.raises(KfboxError, match="does not match its config"):
        registry_cache.layers(image_id, "kfbox/runtime")


def test_a_folder_aside_whose_writer_is_gone_is_removed_and_a_live_ones_kept(
    tmp_path: Path,
) -> None:
    """An `up` killed while it wrote the cache leaves its folder aside; the next one removes it
    (its writer's pid is in the name and no longer runs), never one a running `up` writes."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    abandoned = tmp_path / f"sha256-{'a' * 64}.{gone}-0f0f0f.partial"
    live = tmp_path / f"sha256-{'a' * 64}.{os.getpid()}-1e1e1e.partial"
    cache = tmp_path / f"sha256-{'b' * 64}"
    for folder in (abandoned, live, cache):
        (folder / "docker").mkdir(parents=True)
    assert registry_cache.remove_abandoned(tmp_path) == [abandoned]
    assert not abandoned.exists() and live.is_dir() and cache.is_dir()


def test_the_folder_aside_names_its_writer(cache_home: Path) -> None:
    cached = registry_cache.cache_path("sha256:" + "c" * 64)
    with registry_cache._aside(cached) as partial:
        assert partial.name.startswith(f"{cached.name}.{os.getpid()}-")
        assert registry_cache.remove_abandoned(cached.parent) == []  # its writer runs
