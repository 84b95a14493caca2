"""The platform seam on lite: each operation on the field's own library, every workload a
container labelled with the sandbox and the run, so `close` and `down` find all of them."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from pathlib import Path, PurePosixPath
from typing import Protocol

import docker
from docker.errors import APIError, NotFound

from kfbox.engines.jupyter import JupyterClient
from kfbox.engines.lite import components as comp
from kfbox.engines.lite.artifacts import LiteArtifacts
from kfbox.engines.lite.images import LiteImages
from kfbox.engines.lite.pipelines import LitePipelines
from kfbox.engines.lite.serving import LiteServing
from kfbox.engines.lite.training import LiteTraining
from kfbox.engines.lite.tuning import OptunaTuning
from kfbox.engines.platform import NotebookResult
from kfbox.engines.tracking import TRACKING_ARTIFACTS, TRACKING_USER, MlflowTracking, NoTracking
from kfbox.host import listen
from kfbox.host.config import SandboxSpec
from kfbox.host.docker_engine import ROLE_LABEL, RUN_LABEL
from kfbox.host.progress import Reporter, quiet_reporter
from kfbox.host.redact import mask_text, mask_tree


class LiteSandbox(Protocol):
    """What a journey's platform needs of the lite engine's sandbox (LiteEngine is one): the
    platform is made by the engine, so it names the engine's face, not its class."""

    spec: SandboxSpec

    @property
    def client(self) -> docker.DockerClient: ...

    @property
    def rootless(self) -> bool: ...

    @property
    def docker_host(self) -> str | None: ...

    def labels(self, **extra: str) -> dict[str, str]: ...

    def filters(self, **labels: str) -> dict[str, list[str]]: ...

    def token(self) -> str: ...

    def tracking_password(self) -> str: ...

    def runtime_image(self, reporter: Reporter) -> str: ...

    def base_image(self, reporter: Reporter) -> str: ...

    def gpus(self) -> int: ...


class JupyterNotebooks:
    """Notebooks through the sandbox's JupyterLab, as a remote client would."""

    def __init__(self, base_url: str, token: str, workspace: Path) -> None:
        self.client = JupyterClient(base_url, token, timeout_s=60)
        self.workspace = workspace

    def execute(self, notebook: Path, remote_dir: str, *, timeout_s: float) -> NotebookResult:
        self.client.wait_ready()
        # One folder per journey (remote_dir ends with its run id), where the plugin collects
        # executed notebooks for the diagnostics; one shared folder let journeys overwrite each
        # other's and matched no collector.
        journey = PurePosixPath(remote_dir.strip("/")).name
        executed = self.workspace / journey / "notebook" / f"{notebook.stem}.executed.ipynb"
        return self.client.execute_notebook(notebook, remote_dir, executed, timeout_s)

    def fetch(self, remote_dir: str, dest: Path) -> list[Path]:
        return self.client.fetch_dir(remote_dir, dest)


class LitePlatform:
    def __init__(self, engine: LiteSandbox, run_dir: Path) -> None:
        self.engine = engine
        self.run_dir = run_dir
        # Unique per platform object: every run's workspace folder has the same name, so an id
        # made from it labelled all runs alike and `close` removed other runs' workloads.
        self.run_id = f"run-{secrets.token_hex(4)}"
        spec = engine.spec
        client = engine.client
        labels = engine.labels(**{ROLE_LABEL: "workload", RUN_LABEL: self.run_id})
        self._labels = labels
        store = comp.volume_name(spec.name, "models")
        self.notebooks = JupyterNotebooks(
            f"http://{listen.reach(spec.lite.address_of('jupyter'))}:{spec.ports.jupyter}",
            engine.token(),
            run_dir,
        )
        # The image carries the sandbox's labels, not the run's: a label that changes each run
        # is a build step that is never cached (the legacy builder commits a container for it,
        # seconds on a rootless engine), and nothing finds images by run.
        self.images = LiteImages(
            client, spec.name, f"127.0.0.1:{spec.ports.registry}", self.run_id,
            engine.labels(**{ROLE_LABEL: "workload"})
        )
        self.stopping = threading.Event()
        """Set by close(): training jobs still running (a trial's, after Ctrl-C) end at once."""
        self.training = LiteTraining(client, spec, labels, store, run_dir, self.stopping,
                                     workdir_bind=not engine.rootless)
        self.tuning = OptunaTuning(self.training, self.stopping)
        self.serving = LiteServing(
            client,
            labels,
            comp.network_name(spec.name),
            store,
            f"{comp.prefix(spec.name)}-{self.run_id}",
            spec.resources,
            spec.lite.listen,
        )
        self.pipelines = LitePipelines(client, engine.docker_host, store, labels,
                                       spec.resources, run_dir)
        self.tracking = MlflowTracking(
            f"http://{listen.reach(spec.lite.address_of('tracking'))}:{spec.ports.tracking}",
            TRACKING_USER, engine.tracking_password(), TRACKING_ARTIFACTS,
        ) if "tracking" in spec.lite.components else NoTracking(
            f"sandbox {spec.name!r} runs no tracking server; add `tracking` to lite.components "
            "in kfbox.yaml and run `kfbox up`")
        self.runtime_image = engine.runtime_image(quiet_reporter())
        self.artifacts = LiteArtifacts(
            client, store, engine.base_image(quiet_reporter()), labels
        )

    def gpu_count(self) -> int:
        return self.engine.gpus()

    def _run_filters(self) -> dict[str, list[str]]:
        """This run's workloads, within this sandbox only (label filters are ANDed)."""
        return self.engine.filters(**{RUN_LABEL: self.run_id})

    def _run_containers(self, *, components: bool) -> list:
        found = self.engine.client.containers.list(
            ignore_removed=True, all=True, filters=self._run_filters())
        if components:
            found += self.engine.client.containers.list(
                ignore_removed=True,
                all=True, filters=self.engine.filters(**{ROLE_LABEL: "component"})
            )
        return found

    def collect_diagnostics(self, dest: Path) -> None:
        """Logs and `inspect` of every component and of this run's workloads (secrets masked)."""
        dest.mkdir(parents=True, exist_ok=True)
        for container in self._run_containers(components=True):
            try:
                logs = mask_text(container.logs(timestamps=True).decode(errors="replace"))
                (dest / f"{container.name}.log").write_text(logs)
                (dest / f"{container.name}.inspect.json").write_text(
                    json.dumps(mask_tree(container.attrs), indent=2, default=str)
                )
            except (APIError, NotFound):
                continue  # it went away while we looked: nothing to keep

    def close(self, *, keep: bool = False) -> None:
        self.stopping.set()
        # Kept workloads stay labelled with the sandbox, so `kfbox down` still removes them.
        if keep:
            return
        for container in self._run_containers(components=False):
            with contextlib.suppress(NotFound):  # already gone
                container.remove(force=True)
        for network in self.engine.client.networks.list(filters=self._run_filters()):
            network.remove()
