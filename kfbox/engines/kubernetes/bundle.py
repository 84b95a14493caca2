"""The offline bundle: verified manifests, their lock, the images every component and the
journey start, and those images' tarballs.

Images come from every pod template in the manifests, from the data of the ConfigMaps the lock
names per component (`image_configs`: Katib's suggestion and metrics-collector images, KServe's
storage initializer and agent, started later by their controllers), from the container env
variables, arguments and ConfigMap keys the lock names (`image_settings`: KFP's driver and
launcher, Argo's executor), and from kfbox itself (the
notebook image); the host's own (kind's node image, the registry) are listed apart, since they
go into Docker only, not into the nodes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from kfbox.engines.kubernetes.catalog import (
    Catalog,
    Component,
    load_catalog,
    lock_data,
    parse_lock,
)
from kfbox.engines.kubernetes.hostdocker import HostDocker
from kfbox.engines.kubernetes.installer import parse_objects
from kfbox.engines.kubernetes.kindconfig import NODE_IMAGE, NODE_IMAGE_TAG
from kfbox.engines.kubernetes.manifest_cache import ManifestCache, objects_digest
from kfbox.engines.kubernetes.registry import REGISTRY_IMAGE
from kfbox.engines.kubernetes.tools import Tools
from kfbox.host import paths
from kfbox.host.config import SandboxSpec
from kfbox.host.errors import KfboxError, UsageError
from kfbox.host.progress import Reporter

BUNDLE_LOCK = "components.lock.yaml"
IMAGES_LIST = "images.txt"
HOST_IMAGES_LIST = "host-images.txt"
NODE_IMAGE_RECORD = "node-image.yaml"
"""The node image as the bundle saved it: its pinned reference, the tag it was saved under
(the tarball restores that tag; Docker's classic store restores no repo digest) and its id."""
POD_IMAGE = re.compile(r"^[\w.\-/:@]+$")
CONFIG_IMAGE = re.compile(r"^[a-z0-9][\w.-]*(:[0-9]+)?/[\w./-]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$"
                          r"|^[a-z0-9][\w.-]*:[\w.-]+$")
"""An image as a config file names one: a repository path or a tagged name, so a bare word
(an `image: proxyv2` inside a template, a `$VARIABLE`) is not taken for one."""


def _walk_images(node: Any, found: set[str], pattern: re.Pattern[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str) and pattern.match(value):
                found.add(value)
            else:
                _walk_images(value, found, pattern)
    elif isinstance(node, list):
        for item in node:
            _walk_images(item, found, pattern)


def _container_settings(container: dict[str, Any], settings: tuple[str, ...]) -> set[str]:
    """The values of `settings` in one container: env variables by name, arguments by flag
    (`--flag value` or `--flag=value`)."""
    found = {env["value"] for env in container.get("env") or []
             if env.get("name") in settings and isinstance(env.get("value"), str)}
    args = [str(a) for a in container.get("args") or []]
    for i, arg in enumerate(args):
        flag, _, value = arg.partition("=")
        if flag in settings:
            found.add(value or (args[i + 1] if i + 1 < len(args) else ""))
    return found


def _setting_images(node: Any, settings: tuple[str, ...], found: set[str]) -> None:
    """The values of `settings` in every pod template's containers below `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict):
                        found.update(_container_settings(container, settings))
            else:
                _setting_images(value, settings, found)
    elif isinstance(node, list):
        for item in node:
            _setting_images(item, settings, found)


def images_in(objects: list[dict[str, Any]], configs: tuple[str, ...] = (),
              settings: tuple[str, ...] = ()) -> list[str]:
    """Every container image the objects reference: pod templates at any depth, the `image`
    values in the data (YAML or JSON) of the ConfigMaps named in `configs`, and the values of
    `settings` (catalog.Component.image_settings) in containers and ConfigMap data."""
    found: set[str] = set()
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "ConfigMap":
            data = obj.get("data") or {}
            found.update(v for k, v in data.items() if k in settings and CONFIG_IMAGE.match(v))
            if f"{meta.get('namespace')}/{meta.get('name')}" in configs:
                for text in data.values():
                    try:
                        _walk_images(yaml.safe_load(text), found, CONFIG_IMAGE)
                    except yaml.YAMLError:
                        continue
        else:
            _walk_images(obj, found, POD_IMAGE)
            _setting_images(obj, settings, found)
    found.discard("")
    return sorted(found)


def tarball(dest: Path, image: str) -> Path:
    return dest / "images" / (re.sub(r"[^\w.-]", "_", image) + ".tar")


def write_bundle(dest: Path, catalog: Catalog, plan: list[Component], manifests: ManifestCache,
                 docker: HostDocker, reporter: Reporter, *, extra_images: list[str],
                 host_images: list[str], with_images: bool = True) -> list[str]:
    """Fill `dest` with the plan's verified manifests, a lock pinning each one, the image
    lists (the components', plus `extra_images` kfbox starts itself; `host_images` for the
    host's Docker only), and the tarballs of the images the host has or can pull; returns the
    images it could not save."""
    (dest / "manifests").mkdir(parents=True, exist_ok=True)
    images: set[str] = set(extra_images)
    for comp in plan:
        with reporter.step(f"Bundling {comp.name} {comp.version}"):
            for manifest in comp.manifests:
                if manifest.builtin:
                    continue
                data = manifests.read(manifest)
                (dest / "manifests" / f"{objects_digest(data)}.yaml").write_bytes(data)
                images.update(images_in(parse_objects(data), comp.image_configs,
                                            comp.image_settings))
    included = {c.name for c in plan}
    pruned = Catalog({k: v for k, v in catalog.components.items() if k in included},
                     {k: tuple(n for n in v if n in included)
                      for k, v in catalog.platforms.items()})
    (dest / BUNDLE_LOCK).write_text(yaml.safe_dump(lock_data(pruned, manifests.pins()),
                                                   sort_keys=False))
    (dest / IMAGES_LIST).write_text("".join(f"{i}\n" for i in sorted(images)))
    (dest / HOST_IMAGES_LIST).write_text("".join(f"{i}\n" for i in sorted(host_images)))
    missing: list[str] = []
    if with_images:
        (dest / "images").mkdir(exist_ok=True)
        every = sorted(images | set(host_images))
        with reporter.step(f"Saving {len(every)} images") as update:
            for image in every:
                update(image)
                # An image already in the host's engine is saved as it is: bundles are often
                # made where registries are slow or out of reach.
                try:
                    if not docker.has_image(image):
                        docker.pull(image)
                    if image == NODE_IMAGE:
                        save_node_image(dest, docker)
                    else:
                        docker.save(image, tarball(dest, image))
                except KfboxError:
                    missing.append(image)
    return missing


def save_node_image(dest: Path, docker: HostDocker) -> None:
    """The pinned node image saved under its tag, with its id recorded: after `docker load`
    the tag exists and the pinned reference may not."""
    docker.tag(NODE_IMAGE, NODE_IMAGE_TAG)
    docker.save(NODE_IMAGE_TAG, tarball(dest, NODE_IMAGE))
    (dest / NODE_IMAGE_RECORD).write_text(yaml.safe_dump(
        {"pinned": NODE_IMAGE, "tag": NODE_IMAGE_TAG, "id": docker.image_id(NODE_IMAGE)}))


def offline_node_image(path: Path, docker: HostDocker) -> str:
    """The reference kind creates the nodes from, offline: the pinned one when the engine
    has it, else the loaded tag when its image id is the one the bundle recorded."""
    if docker.image_id(NODE_IMAGE) is not None:
        return NODE_IMAGE
    record_file = path / NODE_IMAGE_RECORD
    record = yaml.safe_load(record_file.read_text()) if record_file.is_file() else {}
    if record.get("pinned") != NODE_IMAGE:
        raise UsageError(f"the bundle carries no node image {NODE_IMAGE} ({NODE_IMAGE_RECORD})",
                         fix="make the bundle again with this kfbox's `kfbox bundle`")
    loaded = docker.image_id(record["tag"])
    if loaded is None or loaded != record["id"]:
        raise UsageError(f"{record['tag']} in Docker is {loaded or 'absent'}, not the bundle's "
                         f"node image {record['id']}",
                         fix=f"`docker rmi {record['tag']}`, then rerun `kfbox up --from-bundle`")
    return str(record["tag"])


def make_bundle(dest: Path, spec: SandboxSpec, *, gpu: bool, with_images: bool,
                trust_on_first_use: bool, reporter: Reporter) -> list[str]:
    """`kfbox bundle`: everything `up --engine kind --from-bundle` needs for the spec's profile
    (and its notebook image), from this host's cache or downloads; returns what it could not
    save."""
    catalog = load_catalog()
    tools = Tools()
    manifests = ManifestCache(paths.cache_dir("manifests"), tools,
                          trust_on_first_use=trust_on_first_use)
    plan = catalog.plan(catalog.platform(spec.kubernetes.platform, gpu=gpu))
    return write_bundle(dest, catalog, plan, manifests, HostDocker(tools), reporter,
                        # kfbox's own notebook image is built on the host, not pulled.
                        extra_images=[i for i in [spec.kubernetes.notebook_image] if i],
                        host_images=[NODE_IMAGE, REGISTRY_IMAGE], with_images=with_images)


def bundle_catalog(path: Path) -> Catalog:
    """The bundle's catalog: every manifest pinned, each served from the bundle."""
    lock = path / BUNDLE_LOCK
    if not lock.is_file():
        raise UsageError(f"{str(path)!r} is not a kfbox bundle (no {BUNDLE_LOCK})",
                         fix="make one with `kfbox bundle --output DIR`")
    return parse_lock(yaml.safe_load(lock.read_text()))


def load_images(path: Path, docker: HostDocker, reporter: Reporter) -> None:
    """The bundle's image tarballs into the host's Docker engine, from where kind makes its
    nodes (the node image) and `kind load` copies the rest into them."""
    tars = sorted((path / "images").glob("*.tar")) if (path / "images").is_dir() else []
    if tars:
        with reporter.step(f"Loading {len(tars)} images from the bundle") as update:
            for tar in tars:
                update(tar.name)
                docker.load(tar)


def bundle_images(path: Path, *, nodes: bool) -> list[str]:
    """The images listed for the nodes (`nodes`) or for the host's Docker only, each of which
    the bundle holds a tarball of."""
    listed = path / (IMAGES_LIST if nodes else HOST_IMAGES_LIST)
    names = listed.read_text().split() if listed.is_file() else []
    return [image for image in names if tarball(path, image).is_file()]
