"""Which offline bundle a sandbox was installed from: its sha256 (what certificates name) and the
images it loaded, kept in the sandbox's state so every later command runs exactly those."""

from __future__ import annotations

import docker
from docker.errors import ImageNotFound
from pydantic import BaseModel

from kfbox.host.errors import KfboxError
from kfbox.host.statefiles import StateFolder


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


RECORD_FILE = "bundle.json"


def record_bundle(sandbox: str, record: BundleRecord) -> None:
    StateFolder(sandbox).write_text(RECORD_FILE, record.model_dump_json(indent=2))


def bundle_record(sandbox: str) -> BundleRecord | None:
    """The bundle the sandbox was installed from; None when it was built online."""
    text = StateFolder(sandbox).read_text(RECORD_FILE)
    try:
        return BundleRecord.model_validate_json(text) if text is not None else None
    except ValueError:
        return None
