"""The versions of Python packages, inside an image (read once by running it, cached by the
image's content id) or beside kfbox: what a certificate names as the software it certified."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

import docker
from docker.errors import DockerException

from kfbox.host import paths

RUNTIME_PACKAGES = ["torch", "kserve", "kfp", "scikit-learn", "numpy"]
"""The ML runtime's packages a certificate names (the scenarios' code runs on them)."""
PROBE = (
    "import importlib.metadata as m, json, platform, sys\n"
    "found = {'python': platform.python_version()}\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        found[name] = m.version(name)\n"
    "    except m.PackageNotFoundError:\n"
    "        pass\n"
    "print(json.dumps(found))\n"
)


def _cache(image_id: str, packages: list[str]) -> Path:
    """One file per image and question: asking for another package list reads the image again."""
    asked = hashlib.sha256("\n".join(sorted(packages)).encode()).hexdigest()[:8]
    return paths.cache_dir("versions") / f"{image_id.replace(':', '-')}-{asked}.json"


def image_versions(
    client: docker.DockerClient, image: str, packages: list[str], labels: dict[str, str]
) -> dict[str, str]:
    """{'python': ..., package: version} as installed in `image`; empty if it cannot be run."""
    try:
        image_id = client.images.get(image).id
        cached = _cache(image_id, packages)
        if cached.is_file():
            return json.loads(cached.read_text())
        output = client.containers.run(
            image, ["python3", "-c", PROBE, *packages], remove=True, network_mode="none",
            labels=labels,
        )
    except DockerException:
        return {}
    found = json.loads(output.decode().strip().splitlines()[-1])
    cached.write_text(json.dumps(found))
    return found


def installed_versions(packages: list[str]) -> dict[str, str]:
    """package → version as installed beside kfbox itself (the host side of a platform)."""
    found = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
