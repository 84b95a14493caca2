"""How many seats this host can hold, decided before anything starts from measured per-seat
memory and CPU (`kfbox workshop plan`, and `workshop up` before it creates a seat).

The per-seat figures are what a seat's own quick journey used when a workshop was verified on
this host (recorded under KFBOX_HOME/measurements); until one was, the defaults below, measured
the same way on a 2-core / 24 GB host, stand in, and the plan says which it used.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from kfbox.apps.workshop.seats import Verification
from kfbox.host import paths, statefiles
from kfbox.host.errors import PreflightError
from kfbox.host.preflight import meminfo_mib

HOST_RESERVE_MIB = 1024.0
"""Memory kept for the host itself: the Docker engine, kfbox, the instructor's own tools."""
MAX_SLOWDOWN = 4.0
"""How much slower a seat's work may run when every seat is busy at once. CPU is shared (a busy
class is slower, not broken) while memory is not (an overcommitted host kills a seat's
processes), so memory must fit outright and CPU only within this factor."""

CORES_PER_VERIFICATION = 2
"""The quick journey runs its two trials side by side, each a CPU-bound training process.
A seat's average (busy_cores) understates that burst: on 2 cores, 3 seats verified 2 at a
time took 201 s, one at a time 146 s."""


@dataclass
class SeatFigures:
    """What one seat uses: at rest, and at its peak while its quick journey runs."""

    idle_memory_mib: float
    peak_memory_mib: float
    busy_cores: float
    """Cores its containers kept busy on average over the journey."""
    source: str


DEFAULT_FIGURES = SeatFigures(
    # The largest of 3 seats' figures from `kfbox workshop up --seats 3` (verified one at a
    # time, sampled from cgroups every 0.25 s) on a 2-core / 24 GB Debian bookworm host.
    idle_memory_mib=76.0,
    peak_memory_mib=955.0,
    busy_cores=0.62,
    source="defaults measured on a 2-core / 24 GB host; verifying a workshop here measures "
    "this host's own",
)


def figures_file() -> Path:
    return paths.home() / "measurements" / "seat.json"


def recorded_figures() -> SeatFigures:
    """The figures the last verified workshop on this host measured, else the defaults."""
    try:
        return SeatFigures(**json.loads(figures_file().read_text()))
    except (OSError, ValueError, TypeError):
        return DEFAULT_FIGURES


def record_figures(workshop: str, verified: list[Verification]) -> SeatFigures:
    """Keep the largest figures any of the workshop's seats measured, for the next plan."""
    figures = SeatFigures(
        idle_memory_mib=max(v.idle_memory_mib for v in verified),
        peak_memory_mib=max(v.peak_memory_mib for v in verified),
        busy_cores=max(v.busy_cores for v in verified),
        source=f"measured by workshop {workshop!r} verifying {len(verified)} seat(s) on "
        f"{datetime.now(UTC):%Y-%m-%d}",
    )
    statefiles.write_atomic(figures_file(), json.dumps(asdict(figures), indent=2))
    return figures


@dataclass
class HostCapacity:
    cores: int
    total_mib: float
    available_mib: float
    """Memory free for new work now (MemAvailable): what other sandboxes use is not."""


def this_host() -> HostCapacity:
    memory = meminfo_mib()
    return HostCapacity(
        os.cpu_count() or 1, memory.get("MemTotal", 0.0), memory.get("MemAvailable", 0.0)
    )


def _gib(mib: float) -> str:
    return f"{mib / 1024:.1f} GiB"


def _seats(count: int) -> str:
    return f"{count} seat" + ("" if count == 1 else "s")


@dataclass
class Plan:
    seats: int
    figures: SeatFigures
    host: HostCapacity

    @property
    def usable_mib(self) -> float:
        return max(0.0, self.host.available_mib - HOST_RESERVE_MIB)

    @property
    def by_memory(self) -> int:
        return math.floor(self.usable_mib / self.figures.peak_memory_mib)

    @property
    def by_cpu(self) -> int:
        return math.floor(self.host.cores * MAX_SLOWDOWN / self.figures.busy_cores)

    @property
    def allowed(self) -> int:
        return min(self.by_memory, self.by_cpu)

    @property
    def fits(self) -> bool:
        return self.seats <= self.allowed

    def parallel(self) -> int:
        """Seats verified at once: one per CORES_PER_VERIFICATION cores."""
        return max(1, min(self.seats, self.host.cores // CORES_PER_VERIFICATION))

    def lines(self) -> list[str]:
        f, h, n = self.figures, self.host, self.seats
        return [
            f"host: {h.cores} cores, {_gib(h.total_mib)} memory, {_gib(h.available_mib)} "
            "available now",
            f"per seat: {f.peak_memory_mib:.0f} MiB memory at its peak ({f.idle_memory_mib:.0f} "
            f"MiB idle), {f.busy_cores:.2f} busy cores ({f.source})",
            f"memory: {n} x {_gib(f.peak_memory_mib)} = {_gib(n * f.peak_memory_mib)} of "
            f"{_gib(self.usable_mib)} (available less {_gib(HOST_RESERVE_MIB)} for the host): "
            f"at most {_seats(self.by_memory)}",
            f"cpu: {n} x {f.busy_cores:.2f} = {n * f.busy_cores:.1f} busy cores on {h.cores}: "
            f"at most {_seats(self.by_cpu)} (when every seat is busy at once each runs at most "
            f"{MAX_SLOWDOWN:.0f}x slower)",
        ]

    def verdict(self) -> str:
        if self.fits:
            return (f"this host can hold {_seats(self.seats)} (at most {self.allowed}); "
                    f"verification runs {self.parallel()} at a time ({CORES_PER_VERIFICATION} "
                    "cores each)")
        return f"this host cannot hold {_seats(self.seats)}: at most {self.allowed}"

    def refusal(self) -> PreflightError:
        """The one line `workshop up` and `plan` end with when the seats do not fit."""
        f, n = self.figures, self.seats
        if self.by_memory <= self.by_cpu:
            bound = (f"memory: {_seats(n)} need {_gib(n * f.peak_memory_mib)} at their peak, "
                     f"{_gib(self.usable_mib)} is free for them")
        else:
            bound = (f"cpu: {n} busy seats keep {n * f.busy_cores:.1f} cores busy, more than "
                     f"{self.host.cores} cores shared {MAX_SLOWDOWN:.0f} ways")
        return PreflightError(
            f"--seats {n}: this host can hold at most {_seats(self.allowed)} ({bound})",
            fix=(f"use --seats {self.allowed} or fewer" if self.allowed else "free memory")
            + f"; `kfbox workshop plan --seats {n}` shows the figures",
        )


def plan(seats: int) -> Plan:
    return Plan(seats, recorded_figures(), this_host())
