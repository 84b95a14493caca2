"""The engine seam: preflight, up, status, down, and the platform a journey runs on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from kfbox.engines.platform import Platform
from kfbox.host.config import SandboxSpec
from kfbox.host.preflight import Check
from kfbox.host.progress import Reporter, StepTiming


@dataclass
class ComponentStatus:
    name: str
    healthy: bool
    detail: str
    url: str = ""
    image: str = ""


@dataclass
class Workload:
    """A journey's workload still running after its run (`kfbox test --keep` keeps the model
    server): what to call it, the run it came from, and where it answers from this host."""

    name: str
    run: str
    url: str = ""


@dataclass
class Access:
    """Something a person opens from this host: where it answers and how it authenticates."""

    url: str
    auth: Literal["token", "basic", "none"]
    """`token`: refused without the sandbox's token (`kfbox status --show-token` shows the URL
    with it); `basic`: refused without HTTP basic auth's user and password (shown the same way);
    `none`: open to anyone who reaches `url`."""


@dataclass
class Tutorial:
    """A notebook the sandbox offers a person, and what running it in the sandbox's kernel
    proves: a requirement id and conditions on the `name=value` lines it prints."""

    notebook: str
    """The notebook file on this host."""
    requirement: str
    prints: list[dict[str, Any]]
    """Conditions as a scenario writes them: {metric, at_least | at_most}."""


@dataclass
class BoundaryProbe:
    """Code the certificate runs in the sandbox's kernel to try the notebook's boundary for
    real, and what it must print for `person.boundary` (conditions as in Tutorial.prints)."""

    source: str
    prints: list[dict[str, Any]]


@dataclass
class Capabilities:
    """What an engine's sandbox exposes. The harness derives its component checks and the
    certificate's contents from this declaration, never from one engine's habits."""

    notebook: Access | None = None
    """A notebook server a person can open; None when notebooks run only inside journeys."""
    registry: str = ""
    """host:port of the image registry workloads pull from, as this host reaches it."""
    model_store: str = ""
    """What holds the models (a volume, a claim), in words; empty when there is none."""
    gpus: int = 0
    """GPUs a workload can request."""
    listen: str = "127.0.0.1"
    """The host address every published port binds to (loopback unless the user named one)."""
    tracking: Access | None = None
    """The tracking server (runs, registered models) a person opens; None when there is none."""
    bundle: str = ""
    """sha256 of the offline bundle the sandbox was installed from; empty when online."""
    tutorials: list[Tutorial] = field(default_factory=list)
    """What a person can do from the notebook on this sandbox; none where the notebook starts
    nothing (lite on the host's engine)."""
    boundary: BoundaryProbe | None = None
    """How the notebook's boundary is tried from its kernel; None where the notebook starts
    nothing."""
    software: dict[str, str] = field(default_factory=dict)
    """name → version of what the platform runs: jupyterlab, jupyter_server, python, torch,
    kserve, kubeflow (the SDK), optuna, docker, kubernetes and each installed component."""


@dataclass
class SandboxStatus:
    name: str
    engine: str
    state: Literal["running", "degraded", "absent"]
    components: list[ComponentStatus] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    workloads: list[Workload] = field(default_factory=list)
    """Kept workloads that still run; they are not the platform, so never its health."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class UpResult:
    """What `up` did, as kind reports its create actions: the sandbox as it stands after, and
    each step it ran, in order, with its stable action name, its duration and whether it
    succeeded. The progress lines a person reads and the figures bench keeps are this list."""

    status: SandboxStatus
    steps: list[StepTiming] = field(default_factory=list)

    def seconds(self, action: str) -> float | None:
        """How long the step named `action` took; None when `up` did not run it."""
        return next((s.seconds for s in self.steps if s.action == action), None)


@dataclass(frozen=True)
class EngineFeatures:
    """What an engine can do, declared by its class (like kind's provider info) and read before
    any sandbox exists (`engines.engine_class`): callers ask the engine, never test its name."""

    bundle: Literal["archive", "folder"]
    """The offline bundle `kfbox bundle` writes for it and `up --from-bundle` reads: one .tar
    archive (a whole machine's worth, certifiable) or a folder of manifests and images."""
    listen: bool = False
    """It can publish its ports on an address beyond 127.0.0.1 (the lite block's `listen`)."""
    seats: bool = False
    """It can run a workshop's seats (sandboxes side by side, each on its own ports)."""


class Engine(ABC):
    """Brings a sandbox up and down. Implementations label everything they create with the
    sandbox name so `down` can prove nothing is left."""

    name: str
    features: EngineFeatures

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec

    @abstractmethod
    def preflight(self) -> list[Check]:
        """Host checks for this engine; never changes anything."""

    @contextmanager
    def installing_from_bundle(self, bundle: Path, reporter: Reporter) -> Iterator[Path | None]:
        """`up --from-bundle`, around preflight: yields the folder of Docker engine packages
        preflight provisions from (None: the bundle brings none); what follows the yield runs
        once preflight passed. Nothing here by default: the engine's `up` reads the bundle."""
        yield None

    @abstractmethod
    def up(self, reporter: Reporter) -> SandboxStatus:
        """Create or repair every component and wait for real readiness. Idempotent."""

    @abstractmethod
    def status(self) -> SandboxStatus:
        """What runs now, with health and URLs; `absent` when nothing exists."""

    @abstractmethod
    def down(self, reporter: Reporter, *, keep_data: bool = False) -> list[str]:
        """Remove everything labelled with the sandbox name (data volumes unless keep_data)
        and return what is still left (empty on success). The sandbox's state folder is the
        caller's to remove (cli.lifecycle.take_down, under the sandbox's lock)."""

    @abstractmethod
    def capabilities(self) -> Capabilities:
        """What this sandbox exposes (see Capabilities); only called on a running sandbox."""

    def token(self) -> str | None:
        """The secret a person logs into the sandbox's UIs with (the notebook's token); None
        when the engine has none to give. Never printed unless asked."""
        return None

    def login_url(self, component: str) -> str | None:
        """The component's URL with its secret (e.g. the Jupyter token); shown only on request."""
        return None

    @abstractmethod
    def platform(self, run_dir: Path) -> Platform:
        """The platform seam for a journey run writing its files under `run_dir`."""
