"""Which offline bundle a sandbox was installed from: its sha256 (what certificates name) and the
images it loaded, kept in the sandbox's state so every later command runs exactly those."""

from __future__ import annotations

import json
from pathlib import Path

import docker
from docker.errors import ImageNotFound
from pydantic import BaseModel

from kfbox.host import paths
from kfbox.host.errors import KfboxError
from kfbox.host.statefiles import write_atomic


class BundleRecord(BaseModel):
    sha256: str
    file: str
    images: dict[str, str]
    """component (base, registry, jupyter, runtime) → tag, as the bundle loaded it."""

    def image(self, component: str, client: docker.DockerClient) -> str:
        """The bundle's image for `component`; never built or fetched: KfboxError when the
        engine no longer has it."""
        tag = self.images.get(component, "")
        try:
            client.images.get(tag)
        except (ImageNotFound, docker.errors.NullResource):
            raise KfboxError(
                f"image {tag or component!r} of the bundle {self.sha256[:12]} is not in the "
                "Docker engine", fix=f"run `kfbox up --from-bundle {self.file}` again") from None
        return tag


def record_file(sandbox: str) -> Path:
    return paths.state_dir(sandbox) / "bundle.json"


def record_bundle(sandbox: str, record: BundleRecord) -> None:
    write_atomic(record_file(sandbox), record.model_dump_json(indent=2))


def bundle_record(sandbox: str) -> BundleRecord | None:
    """The bundle the sandbox was installed from; None when it was built online."""
    try:
        return BundleRecord.model_validate(json.loads(record_file(sandbox).read_text()))
    except (OSError, ValueError):
        return None
