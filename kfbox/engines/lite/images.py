"""Image builds on lite: `docker build` from the workspace (never pulling), pushed to the sandbox
registry and addressed by digest, so later steps run exactly what was built."""

from __future__ import annotations

import re
import time
from pathlib import Path

import docker

from kfbox.engines.lite import registry_push
from kfbox.engines.platform import BuiltImage, StepFailure, plain
from kfbox.host.errors import KfboxError
from kfbox.host.images.dockerbuild import ImageBuildError, docker_build

BUILDER_LINE = re.compile(r"^( ---> |Removing intermediate container |Step \d+/\d+ : )")
"""The classic builder's own progress lines, as opposed to what a RUN printed."""


class LiteImages:
    def __init__(
        self,
        client: docker.DockerClient,
        sandbox: str,
        registry: str,
        tag: str,
        labels: dict[str, str],
    ) -> None:
        self.client = client
        self.sandbox = sandbox
        self.registry = registry
        """host:port of the sandbox registry as the Docker engine reaches it (127.0.0.1)."""
        self.tag = tag
        self.labels = labels

    def build(self, context: Path, repository: str, *, build_args: dict[str, str]) -> BuiltImage:
        started = time.monotonic()
        name = f"{self.registry}/{repository}"
        try:
            docker_build(
                self.client, context, f"{name}:{self.tag}", buildargs=build_args, labels=self.labels
            )
        except ImageBuildError as exc:
            log = plain(exc.log)
            said = last_step_output(log)
            # Docker's error names the command and its exit code; what the command printed
            # (a missing module, a 404) is the real cause, so it leads.
            detail = str(exc).removeprefix("image build failed: ")
            message = f"image build failed: {said} ({detail})" if said else str(exc)
            raise StepFailure(message, logs=log) from exc
        digest = self._push(name)
        return BuiltImage(f"{name}@{digest}", digest, time.monotonic() - started)

    def _push(self, name: str) -> str:
        try:
            return registry_push.push(self.client, self.sandbox, name, self.tag,
                                      f"pushing {name} to the sandbox registry").digest
        except KfboxError as exc:
            raise StepFailure(exc.line()) from exc


def last_step_output(log: str) -> str:
    """The last line the failing build step printed itself (empty if it printed nothing)."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Step ")]
    if not starts:
        return ""
    # The log's last line is the builder's error; the step's output sits between the two.
    printed = [
        line.strip()
        for line in lines[starts[-1] + 1 : -1]
        if line.strip() and not BUILDER_LINE.match(line)
    ]
    return printed[-1] if printed else ""
