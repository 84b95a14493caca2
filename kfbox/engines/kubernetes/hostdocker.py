"""The host's Docker engine, and the only module of the Kubernetes engines that calls it: images
(build, push, pull, save, load), the registry container they go through, the ports the
sandbox's containers publish, and commands run inside kind's node containers."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kfbox.engines.kubernetes.tools import Tools
from kfbox.host.docker_engine import connect
from kfbox.host.errors import KfboxError
from kfbox.host.images.base import IMAGE_LABEL
from kfbox.host.images.build import ensure_component_image
from kfbox.host.images.versions import image_versions
from kfbox.host.progress import quiet_reporter

BUILD_TIMEOUT_S = 1800
IMAGE_MOVE_TIMEOUT_S = 1800


@dataclass
class HostDocker:
    tools: Tools

    # ---- images ----------------------------------------------------------------------------

    def build(self, context: Path, tag: str, build_args: dict[str, str]) -> None:
        argv = ["build", "--pull=false", "-t", tag]
        for key, value in build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        self.tools("docker", *argv, str(context), timeout=BUILD_TIMEOUT_S)

    def push(self, tag: str) -> str:
        """Push, then the pushed image's pinned reference (repository@sha256:...) in the
        repository it was pushed to: an image pulled or pushed elsewhere before carries those
        registries' digests too, in no promised order."""
        self.tools("docker", "push", tag, timeout=IMAGE_MOVE_TIMEOUT_S)
        repository = tag.rpartition(":")[0] if ":" in tag.rpartition("/")[2] else tag
        found = json.loads(self.tools("docker", "inspect", "-f", "{{json .RepoDigests}}",
                                      tag).stdout or "null") or []
        for digest in found:
            if digest.partition("@")[0] == repository:
                return str(digest)
        raise KfboxError(f"docker push {tag} left no digest in {repository} "
                         f"(the image names {', '.join(found) or 'none'})",
                         fix="check `docker push` reached the registry, then rerun")

    def has_image(self, image: str) -> bool:
        return self.tools("docker", "image", "inspect", image, check=False).returncode == 0

    def image_id(self, image: str) -> str | None:
        """The local image's id (sha256:...), None when the engine does not have it."""
        found = self.tools("docker", "image", "inspect", "-f", "{{.Id}}", image, check=False)
        return found.stdout.strip() or None if found.returncode == 0 else None

    def tag(self, image: str, tag: str) -> None:
        self.tools("docker", "tag", image, tag)

    def pull(self, image: str) -> None:
        self.tools("docker", "pull", image, timeout=IMAGE_MOVE_TIMEOUT_S)

    def save(self, image: str, tar: Path) -> None:
        self.tools("docker", "save", "-o", str(tar), image, timeout=IMAGE_MOVE_TIMEOUT_S)

    def load(self, tar: Path) -> None:
        self.tools("docker", "load", "-i", str(tar), timeout=IMAGE_MOVE_TIMEOUT_S)

    # ---- containers ------------------------------------------------------------------------

    def running(self, name: str) -> bool | None:
        """True when the container runs, False when it exists stopped, None when absent."""
        state = self.tools("docker", "inspect", "-f", "{{.State.Running}}", name, check=False)
        if state.returncode != 0:
            return None
        return state.stdout.strip() == "true"

    def start(self, name: str) -> None:
        self.tools("docker", "start", name)

    def run_detached(self, name: str, image: str, *, publish: str,
                     labels: dict[str, str]) -> None:
        """A container that restarts with the engine, publishing `publish` (host:port:port)."""
        argv = ["run", "-d", "--restart=always", "--name", name, "-p", publish]
        for key, value in labels.items():
            argv += ["--label", f"{key}={value}"]
        self.tools("docker", *argv, image)

    def networks(self, name: str) -> set[str]:
        out = self.tools("docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", name)
        return set(json.loads(out.stdout or "{}") or {})

    def connect(self, network: str, name: str) -> None:
        self.tools("docker", "network", "connect", network, name)

    def remove(self, name: str) -> None:
        self.tools("docker", "rm", "-f", name, check=False)

    def published_ports(self, labels: list[str]) -> set[int]:
        """Host ports published by the containers carrying any of `labels` (key=value);
        empty when Docker is missing or unreachable (its own preflight check says so)."""
        try:
            ids = [i for label in labels for i in self.tools(
                "docker", "ps", "-aq", "--filter", f"label={label}", timeout=30).stdout.split()]
            if not ids:
                return set()
            bound = self.tools("docker", "inspect", "-f", "{{json .HostConfig.PortBindings}}",
                               *ids, timeout=30).stdout
        except (KfboxError, subprocess.TimeoutExpired):
            return set()
        ports: set[int] = set()
        for line in bound.splitlines():
            for bindings in (json.loads(line) or {}).values():
                ports.update(int(b["HostPort"]) for b in bindings or [] if b.get("HostPort"))
        return ports

    def info(self) -> dict[str, object]:
        """`docker info` as data (the default runtime, the runtimes)."""
        return dict(json.loads(self.tools("docker", "info", "--format", "{{json .}}",
                                          timeout=30).stdout or "{}"))

    # ---- inside kind nodes -----------------------------------------------------------------

    def node_exec(self, node: str, *argv: str, stdin: str | None = None) -> str:
        interactive = ["-i"] if stdin is not None else []
        return self.tools("docker", "exec", *interactive, node, *argv, stdin=stdin).stdout

    def node_script(self, node: str, script: str) -> str:
        """A bash script inside a node, stopping at its first failing command."""
        return self.tools("docker", "exec", node, "bash", "-ec", script).stdout

    # ---- the ML runtime --------------------------------------------------------------------

    def runtime_image(self, ca_bundle: Path | None) -> str:
        """The ML runtime image scenario images build FROM."""
        return self.component_image("runtime", ca_bundle)

    def component_image(self, name: str, ca_bundle: Path | None) -> str:
        """One of kfbox's own images (the ML runtime, the tracking server), built by kfbox's
        image builder (the lite engine's) into this host's engine."""
        return ensure_component_image(name, quiet_reporter(), connect(), ca_bundle=ca_bundle)

    def runtime_versions(self, packages: list[str], labels: dict[str, str]) -> dict[str, str]:
        """Python's and `packages`' versions in the newest ML runtime image this engine holds
        (what the journey's images build FROM); empty when none is built yet."""
        try:
            client = connect()
        except KfboxError:
            return {}  # no engine to ask: the certificate names what it can
        built = sorted(client.images.list(filters={"label": f"{IMAGE_LABEL}=runtime"}),
                       key=lambda image: image.attrs.get("Created", ""))
        return image_versions(client, built[-1].id, packages, labels) if built else {}
