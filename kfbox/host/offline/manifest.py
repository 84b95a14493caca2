"""The bundle's manifest: what it holds (every member's sha256 and size), what it is for (OS
release, architecture), the versions inside, what it needs on disk, and what verified it."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kfbox.host.errors import UsageError
from kfbox.host.offline.target import Target

KIND = "kfbox-lite-bundle"
FORMAT = 1
"""Bumped when a reader of the previous format could misread a bundle."""
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
BOOTSTRAP = "bootstrap.sh"
INSTALL_DEBS = "install-debs.sh"
IMAGES = "images/kfbox-images.tar.gz"
COMPONENT_IMAGES = ("base", "registry", "jupyter", "tracking", "runtime")
"""The lite engine's images, base first: every other one is built FROM it."""
Stage = Literal["bootstrap", "engine"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Member(_Model):
    sha256: str
    size: int


class Image(_Model):
    tag: str
    id: str
    """The image's content id: the same on every engine that loads it."""


class Deb(_Model):
    package: str
    version: str
    arch: str
    file: str
    stage: Stage
    """`bootstrap`: what the bootstrap needs for Python (installed first); `engine`: the rest."""
    installed_bytes: int = 0


class Fresh(_Model):
    """What "a fresh machine" means: the packages packages were resolved against."""

    definition: str
    packages: int


class Verified(_Model):
    """The certificate of a run on exactly these images (`kfbox bundle --verified-with`)."""

    report: str
    sha256: str
    profile: str
    certified: bool
    scenario: str
    created_at: str


class Needs(_Model):
    """Bytes of disk an install takes, by where they land."""

    stage: int
    """bootstrap.sh's unpacked wheels and packages (TMPDIR)."""
    venv: int
    """kfbox's virtual environment (KFBOX_VENV)."""
    packages: int
    """the Debian packages once installed (/usr)."""
    images: int
    """the loaded images (the Docker engine's data root)."""


class Manifest(_Model):
    kind: Literal["kfbox-lite-bundle"] = KIND
    format: int = FORMAT
    kfbox_version: str
    created_at: str
    target: Target
    fresh: Fresh
    images: dict[str, Image]
    debs: list[Deb]
    wheels: dict[str, str]
    """distribution → version, kfbox included."""
    scenarios: list[str]
    software: dict[str, str]
    """What the images run (python, jupyterlab, torch, kserve, ...) and the Docker engine."""
    made_with: dict[str, str]
    verified: Verified | None = None
    sizes: dict[str, int]
    """Bytes per part (images, wheels, debs, scenarios, tools) and in all."""
    needs: Needs
    members: dict[str, Member] = Field(default_factory=dict)
    """Every member but this manifest: path in the archive → sha256 and size."""

    def to_json(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), indent=2) + "\n").encode()

    def debs_for(self, stage: Stage) -> list[Deb]:
        return [deb for deb in self.debs if deb.stage == stage]


def sums_text(members: dict[str, Member]) -> str:
    """The members in `sha256sum` format and in their order, for the bootstrap (which has no
    JSON parser)."""
    return "".join(f"{m.sha256}  {path}\n" for path, m in members.items())


def parse_manifest(raw: bytes, source: str) -> Manifest:
    """The manifest of bundle `source`; UsageError (one line) for anything that is not one this
    kfbox can read."""
    fix = "give the .tar file that `kfbox bundle` wrote"
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UsageError(f"{source}: its {MANIFEST} is not JSON", fix=fix) from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise UsageError(f"{source} is not a kfbox lite bundle", fix=fix)
    if isinstance(data.get("format"), int) and data["format"] > FORMAT:
        raise UsageError(f"{source} is a format-{data['format']} bundle; this kfbox reads "
                         f"format {FORMAT}", fix="install the kfbox the bundle was made with")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"{source}: manifest field {where!r}: {first['msg']}", fix=fix) from None


def size_text(size: int) -> str:
    """Bytes for people, in SI units as disks are sold: 981 MB, 2.3 GB."""
    if size >= 10**9:
        return f"{size / 10**9:.1f} GB"
    if size >= 10**6:
        return f"{size / 10**6:.0f} MB"
    return f"{size / 10**3:.0f} kB"
