"""The sandbox spec: read from kfbox.yaml and flags, validated, one clear line per bad value."""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from kfbox.host.errors import UsageError
from kfbox.host.statefiles import StateFolder

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
LITE_COMPONENTS = ("jupyter", "registry", "store", "tracking")
LOOPBACK = "127.0.0.1"
HOST_ONLY_COMPONENTS = ("registry",)
"""Components whose port stays on 127.0.0.1 whatever `lite.listen` says: the registry has no
authentication, and the Docker engine pushes to and pulls from it over plain HTTP, which it
allows only for a loopback registry. Only this host's engine ever needs it."""
DEFAULT_CONFIG_FILE = "kfbox.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Ports(_Strict):
    """Host ports, bound to 127.0.0.1 (lite: to `lite.listen`, but the registry's)."""

    jupyter: int = Field(default=8888, ge=1024, le=65535)
    registry: int = Field(default=5000, ge=1024, le=65535)
    tracking: int = Field(default=5001, ge=1024, le=65535)
    """The tracking server's UI and API (lite). MLflow's own default, 5000, is the registry's."""

    @model_validator(mode="after")
    def _distinct(self) -> Ports:
        # Two components on one port pass every check until the second one starts.
        taken: dict[int, str] = {}
        for component, port in self.model_dump().items():
            if port in taken:
                raise ValueError(f"{taken[port]} and {component} are both given port {port}; "
                                 "give each component its own port")
            taken[port] = component
        return self


class Resources(_Strict):
    """Limits of each container that runs a person's or a journey's code: the notebook server,
    each training node, trial and model server (a workshop's per-seat limits)."""

    memory: str = Field(default="4g", pattern=r"^[0-9]+[kmg]$")
    cpus: float = Field(default=2.0, gt=0, le=256)


REGISTRY_PATTERN = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$")
IMAGE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$")


def _absolute(value: Path | None) -> Path | None:
    # Paths are recorded with the spec and read by later commands, maybe from another folder.
    return value.expanduser().resolve() if value is not None else None


class LiteSettings(_Strict):
    """Settings only the lite engine reads (kfbox.yaml's `lite:` block)."""

    components: list[str] = Field(default_factory=lambda: list(LITE_COMPONENTS))
    listen: str = LOOPBACK
    """The host address the notebook server and model servers publish their ports on: an IPv4
    address of this host, or 0.0.0.0 for all of them (checked by preflight)."""
    docker: Literal["host", "rootless"] = "rootless"
    """Which Docker engine the sandbox runs in. `rootless` (the default): a rootless Docker
    engine of the sandbox's own, run by an unprivileged user made for it
    (kfbox/host/rootless_docker.py), whose socket the notebook holds, so a person trains, tunes,
    serves and builds from a cell (docs/security.md). `host`: the host's Docker engine, and the
    notebook starts nothing (so the person.* requirements, and with them `core`, cannot pass)."""

    @field_validator("components")
    @classmethod
    def _components(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in LITE_COMPONENTS]
        if unknown:
            raise ValueError(
                f"unknown component {unknown[0]!r}; allowed: {', '.join(LITE_COMPONENTS)}"
            )
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        # Syntax only: whether this host has the address is preflight's question, so that a
        # sandbox recorded on an address the host has since lost can still be taken down.
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            raise ValueError("give an IPv4 address of this host, or 0.0.0.0 for all") from None

    def address_of(self, component: str) -> str:
        """The host address `component`'s port is published on."""
        return published_address(component, self.listen)


def published_address(component: str, listen: str) -> str:
    """The host address `component`'s port is published on when the sandbox listens on
    `listen`: the host-only components stay on loopback."""
    return LOOPBACK if component in HOST_ONLY_COMPONENTS else listen


class KubernetesSettings(_Strict):
    """Settings only the Kubernetes engines (kind, existing) read (kfbox.yaml's `kubernetes:`
    block)."""

    kubeconfig: Path | None = None
    """`existing`: the kubeconfig that reaches the cluster."""
    nodes: int = Field(default=1, ge=1, le=8)
    """`kind`: the cluster's nodes (one control plane, the rest workers)."""
    platform: Literal["core", "full"] = "core"
    """The Kubeflow platform to install (core: Trainer, Katib, KServe, notebooks; full: core
    and Kubeflow's dashboard, auth, profiles and web apps)."""
    trust_on_first_use: bool = False
    """Accept a manifest the lock has no sha256 for, and pin that hash."""
    registry: str | None = None
    """host[:port][/path] the cluster pulls journey images from and this host pushes them to;
    required on `existing` (kind runs its own, localhost:<ports.registry>)."""
    notebook_image: str | None = None
    """`kind`: the image of the sandbox notebook a person opens. None runs kfbox's own
    (JupyterLab on the ML runtime: the Kubeflow SDK, KServe and torch the tutorials use), built
    on this host and pushed to the kind registry; another (a Kubeflow notebook-server image or
    one built like them) runs as named, and the tutorials need what it lacks."""

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        if value is not None and not REGISTRY_PATTERN.match(value):
            raise ValueError("give host, host:port or host:port/path without a scheme, e.g. "
                             "registry.example:5000/team")
        return value

    @field_validator("notebook_image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and not IMAGE_PATTERN.match(value):
            raise ValueError("give an image reference, e.g. registry.example/notebook:v1")
        return value

    @field_validator("kubeconfig")
    @classmethod
    def _kubeconfig(cls, value: Path | None) -> Path | None:
        return _absolute(value)


class SandboxSpec(_Strict):
    """Everything `kfbox up` needs to know; recorded in the sandbox state on success."""

    name: str = "kfbox"
    engine: Literal["lite", "kind", "existing"] = "lite"
    gpu: Literal["auto", "on", "off"] = "auto"
    ports: Ports = Field(default_factory=Ports)
    resources: Resources = Field(default_factory=Resources)
    ca_bundle: Path | None = None
    from_bundle: Path | None = None
    """An offline bundle (`kfbox bundle`): lite installs from its .tar, kind from its folder."""
    lite: LiteSettings = Field(default_factory=LiteSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("must be 1-30 characters of a-z, 0-9 and '-', starting with a letter")
        return value

    @field_validator("gpu", mode="before")
    @classmethod
    def _gpu_yaml_booleans(cls, value: object) -> object:
        # YAML 1.1 reads a bare `gpu: off` / `gpu: on` as a boolean.
        if isinstance(value, bool):
            return "on" if value else "off"
        return value

    @field_validator("ca_bundle", "from_bundle")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return _absolute(value)

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file {str(value)!r}; give a PEM bundle or leave it unset")
        return value


def _describe(error: dict[str, Any], source: str) -> str:
    """One line for one pydantic error: where, which value, what is allowed."""
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(error["loc"][:-1])
        return f"{source}: unknown key {key!r}; allowed keys here: {', '.join(allowed)}"
    value = error.get("input")
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:  # a rule across keys: its message names them
        return f"{source}: {message}"
    if kind == "literal_error":
        message = "allowed: " + error["ctx"]["expected"].replace("'", "")
    return f"{source}: {key}: {value!r} is not valid ({message})"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = SandboxSpec
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return sorted(model.model_fields)


def _nest(overrides: dict[str, Any]) -> dict[str, Any]:
    """Turn {'ports.jupyter': 1} into {'ports': {'jupyter': 1}}, dropping unset (None) flags."""
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return nested


MOVED_KEYS = {
    "components": "lite",
    "listen": "lite",
    "kubeconfig": "kubernetes",
    "nodes": "kubernetes",
    "platform": "kubernetes",
    "trust_on_first_use": "kubernetes",
}
"""Keys an older kfbox read at the top level, and the engine block each lives in now. The old
place is still read in this release: with a notice in kfbox.yaml, silently in a recorded spec."""


def _into_blocks(data: dict[str, Any], source: str | None) -> dict[str, Any]:
    """`data` with each key at its old place (MOVED_KEYS) moved into its engine's block. For a
    file (`source` names it) a notice on stderr per key, and a UsageError for a key given in
    both places. A spec an older kfbox recorded (`source` None) moves silently: kfbox wrote
    it, there is nothing for the user to move."""
    moved = dict(data)
    for key, block in MOVED_KEYS.items():
        settings = moved.get(block, {})
        if key not in moved or not isinstance(settings, dict):
            continue  # a block that is no mapping is validation's to name
        if source is None:  # a block's own value, if it has one, is the newer
            moved[block] = {key: moved.pop(key), **settings}
            continue
        if key in settings:
            raise UsageError(f"{source}: {key!r} is given twice, at the top level and as "
                             f"{block}.{key}", fix=f"keep {block}.{key} and delete the other")
        print(f"{source}: {key!r} belongs in the {block!r} block now; move it there "
              "(the old place still works in this release)", file=sys.stderr)
        moved[block] = {**settings, key: moved.pop(key)}
    return moved


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`base` with `top` applied: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise UsageError(f"cannot read config {str(path)!r}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise UsageError(
            f"{path}: the top level must be a mapping of keys, not {type(data).__name__}"
        )
    return data


def record_spec(spec: SandboxSpec) -> None:
    """Remember the spec a sandbox was brought up with, so later commands (`status`, `test`,
    `certify`, a second `up`) use its ports and settings without the flags being repeated."""
    StateFolder(spec.name).write_text(StateFolder.SPEC, spec.model_dump_json(indent=2))


def forget_sandbox(name: str) -> None:
    """Remove the sandbox's state folder: its recorded spec, token and engine state."""
    StateFolder(name).remove()


EARLIER_DEFAULT_COMPONENTS = (["jupyter", "registry", "store"],)
"""`lite.components` as earlier kfbox releases defaulted and recorded it. A recorded spec that
holds one of them took the default rather than chose: it gets today's (the tracking server),
while a kfbox.yaml that names the same list still wins, being read after the record."""


def _recorded(name: object) -> dict[str, Any]:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return {}
    recorded = StateFolder(name).read_json(StateFolder.SPEC)
    if not isinstance(recorded, dict):
        return {}
    lite = recorded.get("lite")
    if isinstance(lite, dict) and lite.get("components") in EARLIER_DEFAULT_COMPONENTS:
        recorded["lite"] = {**lite, "components": list(LITE_COMPONENTS)}
    return recorded


def load_spec(config: Path | None = None, overrides: dict[str, Any] | None = None) -> SandboxSpec:
    """Build the spec: the sandbox's recorded spec (if it was brought up before), then the file
    (./kfbox.yaml or --config), then flag overrides (dotted keys), each over the one before.
    UsageError, naming the source and key, for anything invalid."""
    data: dict[str, Any] = {}
    source = "flags"
    if config is None and Path(DEFAULT_CONFIG_FILE).is_file():
        config = Path(DEFAULT_CONFIG_FILE)
    if config is not None:
        source = str(config)
        data = _into_blocks(read_config_file(config), source)
    flags = _nest(overrides or {})
    name = flags.get("name", data.get("name", SandboxSpec.model_fields["name"].default))
    data = deep_merge(deep_merge(_into_blocks(_recorded(name), None), data), flags)
    try:
        return SandboxSpec.model_validate(data)
    except ValidationError as exc:
        raise UsageError(_describe(exc.errors()[0], source)) from None
