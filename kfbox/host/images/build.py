"""Image builds without pulling: one streaming `docker build` helper, and the component images
whose tags are a hash of their inputs (nothing is rebuilt unless an input changed)."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import docker

from kfbox.host import paths
from kfbox.host.diskspace import (
    NEEDS_GIB,
    require_space,
)
from kfbox.host.errors import KfboxError
from kfbox.host.images.base import IMAGE_LABEL, ensure_base_image
from kfbox.host.images.ca import find_ca_bundle
from kfbox.host.images.dockerbuild import docker_build
from kfbox.host.images.wheelhouse import ensure_wheelhouse
from kfbox.host.images.wheelserver import PORT, serving
from kfbox.host.progress import Reporter

COMPONENTS_DIR = resources.files("kfbox.host.images") / "components"
INSTALLER = Path(str(COMPONENTS_DIR / "install-wheels"))
"""Every image with requirements installs them with this script (one place for the recipe)."""
BUILT_ON = {"jupyter": "runtime", "tracking": "runtime"}
"""Components whose image builds FROM another component's image rather than the base: the
notebook's kernel is the ML runtime its jobs run (same torch, KServe, scikit-learn), and the two
share every layer of the runtime in the image store. The tracking server is built on it too: MLflow
needs numpy, scikit-learn and much of what the runtime has, so it adds only its own packages."""


def _component_dir(name: str) -> Path:
    path = Path(str(COMPONENTS_DIR / name))
    if not (path / "Dockerfile").is_file():
        raise KfboxError(f"no component image named {name!r}")
    return path


def _requirements(component: Path) -> list[str]:
    """The component's requirements, after those of the image it is built on: one resolution
    for both, so the layer on top reinstalls nothing the image below already has."""
    file = component / "requirements.txt"
    below = _requirements(_component_dir(BUILT_ON[component.name])) if (
        component.name in BUILT_ON) else []
    if not file.exists():
        return below
    return below + [
        ln.strip() for ln in file.read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]


def _input_hash(component: Path, base: str, ca_bundle: bytes, wheels: list[str]) -> str:
    digest = hashlib.sha256(base.encode())
    for file in [*sorted(component.iterdir()), *([INSTALLER] if wheels else [])]:
        digest.update(file.name.encode() + file.read_bytes())
    digest.update(ca_bundle)
    digest.update("\n".join(sorted(wheels)).encode())
    return digest.hexdigest()[:12]


def prefetch_wheels(name: str, reporter: Reporter) -> None:
    """Download component `name`'s wheelhouse now (a no-op when cached or when it has none)."""
    requirements = _requirements(_component_dir(name))
    if requirements:
        ensure_wheelhouse(requirements, reporter, name)


def ensure_component_image(
    name: str,
    reporter: Reporter,
    client: docker.DockerClient,
    *,
    ca_bundle: Path | None = None,
) -> str:
    """The tag of component image `name` (kfbox/<name>:<input-hash>), built if missing."""
    component = _component_dir(name)
    if name in BUILT_ON:
        base = ensure_component_image(BUILT_ON[name], reporter, client, ca_bundle=ca_bundle)
    else:
        base = ensure_base_image(reporter, client)
    requirements = _requirements(component)
    wheels_dir = ensure_wheelhouse(requirements, reporter, name) if requirements else None
    wheels = sorted(p.name for p in wheels_dir.glob("*.whl")) if wheels_dir else []
    bundle = ca_bundle or find_ca_bundle()
    bundle_bytes = bundle.read_bytes() if bundle else b""
    tag = f"kfbox/{name}:{_input_hash(component, base, bundle_bytes, wheels)}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    require_space(client, f"building image {tag}", NEEDS_GIB[name])
    with (
        reporter.step(f"Building image {tag}", action=f"image:{name}") as update,
        tempfile.TemporaryDirectory(dir=paths.cache_dir("contexts")) as tmp,
        wheels_for(client, wheels_dir, base, tag) as (network, buildargs),
    ):
        context = Path(tmp)
        for file in component.iterdir():
            shutil.copy2(file, context / file.name)
        if wheels_dir is not None:
            shutil.copy2(INSTALLER, context / INSTALLER.name)
        (context / "ca-bundle.crt").write_bytes(bundle_bytes)
        docker_build(
            client,
            context,
            tag,
            buildargs={"BASE_IMAGE": base, **buildargs},
            labels={IMAGE_LABEL: name},
            update=update,
            network=network,
        )
    return tag


@contextlib.contextmanager
def wheels_for(
    client: docker.DockerClient, wheelhouse: Path | None, base: str, tag: str
) -> Iterator[tuple[str | None, dict[str, str]]]:
    """(network, build args) giving a build its wheelhouse over the network; none without."""
    if wheelhouse is None:
        yield None, {}
        return
    with serving(client, wheelhouse, base, tag) as (network, host):
        yield network, {"WHEELS_HOST": host, "WHEELS_PORT": str(PORT)}
