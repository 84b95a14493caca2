"""A workshop's record: its seats (each a sandbox with its own ports), where they listen, their
limits and their last verification, kept in the workshop's state folder."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from kfbox.apps.workshop.defaults import DEFAULT_BASE_PORT, DEFAULT_NAME
from kfbox.engines import engine_class
from kfbox.host import paths, statefiles
from kfbox.host.config import NAME_PATTERN, SandboxSpec, load_spec
from kfbox.host.errors import KfboxError, UsageError

PORTS_PER_SEAT = 3
"""Each seat publishes JupyterLab (base + 3i), its registry (base + 3i + 1) and its tracking
server (base + 3i + 2)."""
MAX_SEATS = 99
SEAT_SUFFIX = len("-99")


@dataclass
class Verification:
    """A seat's last quick journey (`kfbox certify --profile quick`) and what the seat used."""

    status: str
    """certified | not certified"""
    detail: str
    bundle: str
    seconds: float
    idle_memory_mib: float
    peak_memory_mib: float
    cpu_seconds: float
    """CPU time the seat's containers used during the journey."""
    busy_cores: float
    """cpu_seconds over the journey's wall time: the cores the seat keeps busy on average."""
    verified_at: str


@dataclass
class Seat:
    name: str
    """The seat's sandbox name: WORKSHOP-N (`kfbox --name WORKSHOP-N status` works too)."""
    jupyter: int
    registry: int
    verification: Verification | None = None
    tracking: int = 0
    """0 in a workshop recorded before seats had a tracking server: the seat runs none, so it
    takes no port beyond its two."""


@dataclass
class Workshop:
    name: str
    base_port: int
    listen: str
    resources: dict[str, Any] = field(default_factory=dict)
    """Per-seat limit overrides (memory, cpus) given to `workshop up`; empty: the spec's."""
    seats: list[Seat] = field(default_factory=list)

    def seat(self, name: str) -> Seat:
        """The named seat; a UsageError naming the seats there are otherwise."""
        for seat in self.seats:
            if seat.name == name:
                return seat
        raise UsageError(
            f"no seat {name!r} in workshop {self.name!r}",
            fix=f"give one of: {', '.join(s.name for s in self.seats)}",
        )

    def port_range(self) -> str:
        return f"{self.base_port}-{self.base_port + PORTS_PER_SEAT * len(self.seats) - 1}"

    def spec(self, seat: Seat, config: Path | None) -> SandboxSpec:
        """The seat's sandbox spec: kfbox.yaml (or --config) with the seat's name, ports,
        listen address and limits over it, on an engine that declares it runs seats."""
        overrides = {
            "name": seat.name,
            "ports.jupyter": seat.jupyter,
            "ports.registry": seat.registry,
            **({"ports.tracking": seat.tracking} if seat.tracking else
               {"lite.components": ["jupyter", "registry", "store"]}),
            "lite.listen": self.listen,
            **{f"resources.{key}": value for key, value in self.resources.items()},
        }
        spec = load_spec(config, overrides)
        if not engine_class(spec.engine).features.seats:
            raise UsageError(
                f"engine {spec.engine!r}: a workshop's seats run on the lite engine",
                fix="drop `engine:` from the config, or set it to lite",
            )
        return spec

    def save(self) -> None:
        statefiles.write_atomic(record_file(self.name), json.dumps(asdict(self), indent=2))


def folder(name: str) -> Path:
    """The workshop's state: its record and the roster page."""
    return paths.home() / "workshops" / name


def record_file(name: str) -> Path:
    return folder(name) / "workshop.json"


def _verification(data: dict[str, Any] | None) -> Verification | None:
    """A recorded verification; None when there is none or another kfbox recorded it in a
    form this one does not know (the seat then reads as not verified, never as broken)."""
    known = {f.name for f in fields(Verification)}
    try:
        return Verification(**{k: v for k, v in (data or {}).items() if k in known})
    except TypeError:
        return None


def load(name: str) -> Workshop | None:
    """The recorded workshop, or None when there is none."""
    try:
        data = json.loads(record_file(name).read_text())
    except (OSError, ValueError):
        return None
    try:
        return Workshop(
            name=data["name"],
            base_port=data["base_port"],
            listen=data["listen"],
            resources=data.get("resources", {}),
            seats=[
                Seat(s["name"], s["jupyter"], s["registry"], _verification(s.get("verification")),
                     s.get("tracking", 0))
                for s in data["seats"]
            ],
        )
    except (KeyError, TypeError):
        raise KfboxError(
            f"workshop {name!r}: its record {record_file(name)} is not one kfbox can read",
            fix=f"remove each seat with `kfbox --name {name}-N down`, then that folder",
        ) from None


def forget(name: str) -> None:
    shutil.rmtree(folder(name), ignore_errors=True)


def check_name(name: str) -> str:
    """A workshop name leaves room for its seats' suffix within a sandbox name's 30 characters."""
    if len(name) > 30 - SEAT_SUFFIX or not NAME_PATTERN.match(name):
        raise UsageError(
            f"workshop name {name!r} is not valid (1-{30 - SEAT_SUFFIX} characters of a-z, 0-9 "
            "and '-', starting with a letter)",
            fix=f"e.g. --name {DEFAULT_NAME}",
        )
    return name


def check_seats(seats: int) -> int:
    if not 1 <= seats <= MAX_SEATS:
        raise UsageError(
            f"--seats {seats}: a workshop has 1 to {MAX_SEATS} seats", fix="e.g. --seats 3"
        )
    return seats


def new_workshop(
    name: str, seats: int, base_port: int, listen: str, resources: dict[str, Any]
) -> Workshop:
    """A workshop of `seats` seats named NAME-1.., their ports counted up from `base_port`."""
    check_name(name)
    check_seats(seats)
    last = base_port + PORTS_PER_SEAT * seats - 1
    if base_port < 1024 or last > 65535:
        raise UsageError(
            f"--base-port {base_port}: {seats} seats need ports {base_port}-{last}, beyond "
            "1024-65535",
            fix=f"e.g. --base-port {DEFAULT_BASE_PORT}",
        )
    return Workshop(
        name=name,
        base_port=base_port,
        listen=listen,
        resources=resources,
        seats=[
            Seat(
                f"{name}-{i + 1}",
                base_port + PORTS_PER_SEAT * i,
                base_port + PORTS_PER_SEAT * i + 1,
                tracking=base_port + PORTS_PER_SEAT * i + 2,
            )
            for i in range(seats)
        ],
    )
