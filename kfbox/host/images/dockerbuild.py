"""One `docker build` with pull=False: its progress as lines, its failure as one line with the log
kept (every image kfbox makes is built here: the base, the components, a journey's image)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docker
from docker.errors import APIError, BuildError

from kfbox.host.diskspace import data_root, disk_full, is_disk_full
from kfbox.host.errors import KfboxError


class ImageBuildError(KfboxError):
    """A docker build failed; `log` holds the build output for diagnostics."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


def docker_build(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    *,
    buildargs: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    update: Callable[[str], None] = lambda _: None,
    network: str | None = None,
) -> str:
    """Build `context` with pull=False, streaming 'Step i/n' into `update`; return the image id.
    A failure raises ImageBuildError whose message is the failing instruction's last line."""
    log: list[str] = []
    image_id = ""
    try:
        stream = client.api.build(
            path=str(context),
            tag=tag,
            buildargs=buildargs or {},
            labels=labels or {},
            pull=False,
            rm=True,
            forcerm=True,
            decode=True,
            network_mode=network,
        )
        for chunk in stream:
            if "stream" in chunk:
                # Kept as sent: a RUN's output arrives in pieces that can split a line, and
                # stripping and re-joining them cut its last line (the cause) in two.
                log.append(chunk["stream"])
                if chunk["stream"].startswith("Step "):
                    update(chunk["stream"].split(" : ")[0].lower())
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            if "error" in chunk:
                log.append(chunk["error"].rstrip() + "\n")
                if is_disk_full(chunk["error"]):
                    raise disk_full(f"building image {tag}", data_root(client))
                raise ImageBuildError(f"image build failed: {chunk['error'].strip()}", "".join(log))
    except (APIError, BuildError) as exc:
        if is_disk_full(str(exc)):
            raise disk_full(f"building image {tag}", data_root(client)) from exc
        raise ImageBuildError(f"image build failed: {exc}", "".join(log)) from exc
    if not image_id:
        image_id = client.images.get(tag).id
    return image_id
