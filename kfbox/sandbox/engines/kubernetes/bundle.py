"""The offline bundle: verified manifests, their lock, the image list, and image tarballs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from kfbox.sandbox.engines.kubernetes.catalog import Catalog, Component, lock_data, parse_lock
from kfbox.sandbox.engines.kubernetes.installer import parse_objects
from kfbox.sandbox.engines.kubernetes.store import ManifestStore, sha256_of
from kfbox.sandbox.engines.kubernetes.tools import CommandFailed, Tools
from kfbox.sandbox.errors import UsageError
from kfbox.sandbox.progress import Reporter

BUNDLE_LOCK = "components.lock.yaml"
IMAGES_LIST = "images.txt"


def images_in(objects: list[dict]) -> list[str]:
    """Every container image the objects reference (pod templates at any depth)."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "image" and isinstance(value, str) and re.match(r"^[\w.\-/:@]+$", value):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(objects)
    return sorted(found)


def write_bundle(dest: Path, catalog: Catalog, plan: list[Component], store: ManifestStore,
                 tools: Tools, reporter: Reporter, *, with_images: bool = True) -> list[str]:
    """Fill `dest` with the plan's verified manifests, a lock pinning each one, the list of
    images, and the tarballs of the images the host has or can pull; returns the images it
    could not save."""
    (dest / "manifests").mkdir(parents=True, exist_ok=True)
    images: set[str] = set()
    for comp in plan:
        with reporter.step(f"Bundling {comp.name} {comp.version}"):
            for manifest in comp.manifests:
                if manifest.builtin:
                    continue
                data = store.read(manifest)
                (dest / "manifests" / f"{sha256_of(data)}.yaml").write_bytes(data)
                images.update(images_in(parse_objects(data)))
    included = {c.name for c in plan}
    pruned = Catalog({k: v for k, v in catalog.components.items() if k in included},
                     {k: tuple(n for n in v if n in included)
                      for k, v in catalog.profiles.items()})
    (dest / BUNDLE_LOCK).write_text(yaml.safe_dump(lock_data(pruned, store.pins()),
                                                   sort_keys=False))
    (dest / IMAGES_LIST).write_text("".join(f"{i}\n" for i in sorted(images)))
    missing: list[str] = []
    if with_images:
        (dest / "images").mkdir(exist_ok=True)
        with reporter.step(f"Saving {len(images)} images") as update:
            for image in sorted(images):
                update(image)
                tar = dest / "images" / (re.sub(r"[^\w.-]", "_", image) + ".tar")
                # An image already in the host's engine is saved as it is: bundles are often
                # made where registries are slow or out of reach.
                local = tools("docker", "image", "inspect", image, check=False).returncode == 0
                try:
                    if not local:
                        tools("docker", "pull", image, timeout=1800)
                    tools("docker", "save", "-o", str(tar), image, timeout=1800)
                except CommandFailed:
                    missing.append(image)
    return missing


def load_bundle(path: Path, tools: Tools, reporter: Reporter) -> Catalog:
    """The bundle's catalog (every manifest pinned); its image tarballs are loaded into the
    host's Docker engine, from where kind nodes get them with `kind load`."""
    lock = path / BUNDLE_LOCK
    if not lock.is_file():
        raise UsageError(f"{str(path)!r} is not a kfbox bundle (no {BUNDLE_LOCK})",
                         fix="make one with `kfbox bundle --output DIR`")
    catalog = parse_lock(yaml.safe_load(lock.read_text()))
    tars = sorted((path / "images").glob("*.tar")) if (path / "images").is_dir() else []
    if tars:
        with reporter.step(f"Loading {len(tars)} images from the bundle") as update:
            for tar in tars:
                update(tar.name)
                tools("docker", "load", "-i", str(tar), timeout=1800)
    return catalog


def bundle_images(path: Path) -> list[str]:
    listed = path / IMAGES_LIST
    return listed.read_text().split() if listed.is_file() else []
