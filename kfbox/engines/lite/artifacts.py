"""The model store on lite: a labelled volume, read through a never-started helper container."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import docker
from docker.errors import NotFound

from kfbox.engines.platform import MODEL_STORE_MOUNT, StepFailure


class LiteArtifacts:
    def __init__(
        self, client: docker.DockerClient, store_volume: str, image: str, labels: dict[str, str]
    ) -> None:
        self.client = client
        self.store_volume = store_volume
        self.image = image
        self.labels = labels

    @contextmanager
    def _reader(self) -> Iterator[docker.models.containers.Container]:
        # `docker cp` works on a created container: nothing runs, the volume is just mounted.
        container = self.client.containers.create(
            self.image,
            command=["true"],
            labels=self.labels,
            volumes={self.store_volume: {"bind": MODEL_STORE_MOUNT, "mode": "ro"}},
        )
        try:
            yield container
        finally:
            container.remove(force=True)

    def _archive(self, key: str) -> tarfile.TarFile:
        path = str(PurePosixPath(MODEL_STORE_MOUNT) / key)
        with self._reader() as container:
            try:
                stream, _ = container.get_archive(path)
            except NotFound as exc:
                raise StepFailure(f"nothing in the model store at {key!r}") from exc
            data = b"".join(stream)
        return tarfile.open(fileobj=io.BytesIO(data))

    def list(self, prefix: str = "") -> list[str]:
        archive = self._archive(prefix)
        root = PurePosixPath(PurePosixPath(MODEL_STORE_MOUNT) / prefix).name
        keys = []
        for member in archive.getmembers():
            if member.isfile():
                relative = PurePosixPath(member.name).relative_to(root)
                keys.append(str(PurePosixPath(prefix) / relative) if prefix else str(relative))
        return sorted(keys)

    def fetch(self, key: str, dest: Path) -> Path:
        archive = self._archive(key)
        dest.mkdir(parents=True, exist_ok=True)
        if hasattr(tarfile, "data_filter"):
            archive.extractall(dest, filter="data")
        else:  # Debian 12's python3 (3.11.2) predates extraction filters
            archive.extractall(dest, members=plain_members(archive, dest))
        return dest / PurePosixPath(key).name


def plain_members(archive: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """What the "data" extraction filter lets through: files and folders that land inside
    `dest` (no links, devices or paths that climb out)."""
    root = dest.resolve()
    return [
        member for member in archive.getmembers()
        if (member.isfile() or member.isdir())
        and (root / member.name).resolve().is_relative_to(root)
    ]
