"""A workshop's lifecycle: bring its seats up and verify them, show them, reset one, take every
seat down. Every bad input is refused before the first seat, network, volume or folder exists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kfbox.apps.workshop import capacity, roster, seats
from kfbox.apps.workshop.seats import DEFAULT_BASE_PORT, Workshop
from kfbox.apps.workshop.verify import verify_seats
from kfbox.engines import get_engine
from kfbox.engines.base import Engine
from kfbox.engines.lifecycle import bring_up, take_down
from kfbox.host.config import load_spec
from kfbox.host.errors import KfboxError, PreflightError, UsageError
from kfbox.host.progress import Reporter
from kfbox.host.statefiles import StateFolder


def engines_of(workshop: Workshop, config: Path | None) -> dict[str, Engine]:
    """Each seat's engine, by seat name (UsageError for a bad spec, before anything runs)."""
    return {seat.name: get_engine(workshop.spec(seat, config)) for seat in workshop.seats}


def require(name: str) -> Workshop:
    workshop = seats.load(seats.check_name(name))
    if workshop is None:
        raise PreflightError(
            f"workshop {name!r} does not exist",
            fix="bring it up with `kfbox workshop up --seats N`"
            + (f" (with --name {name})" if name != seats.DEFAULT_NAME else ""),
        )
    return workshop


def _planned(
    name: str, count: int | None, base_port: int | None, listen: str | None,
    resources: dict[str, Any], config: Path | None,
) -> tuple[Workshop, bool]:
    """The workshop `up` is asked for, and whether it is new. A new one listens where the flag
    says, else where kfbox.yaml (or --config) does; an existing one keeps its seats and ports,
    and its listen address and limits may change (the seats are repaired to match)."""
    existing = seats.load(seats.check_name(name))
    if existing is None:
        if count is None:
            raise UsageError(f"workshop {name!r} does not exist yet: say how many seats",
                             fix="e.g. `kfbox workshop up --seats 3`")
        configured = load_spec(config, {"name": f"{name}-1", "lite.listen": listen}).lite.listen
        return seats.new_workshop(name, count, base_port or DEFAULT_BASE_PORT,
                                  configured, resources), True
    if (count is not None and count != len(existing.seats)) or (
        base_port is not None and base_port != existing.base_port
    ):
        raise UsageError(
            f"workshop {name!r} already has {len(existing.seats)} seats on ports "
            f"{existing.port_range()}",
            fix="leave --seats and --base-port out to repair it, or `kfbox workshop down` first",
        )
    existing.listen = listen or existing.listen
    existing.resources |= resources
    return existing, False


def _results_folder(out: Path) -> Path:
    """--out as an absolute path (the record and roster name bundles by it), refused before
    anything is made when it cannot be written; nothing is created to find that out."""
    out = out.expanduser().resolve()
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--out {str(out)!r} is not writable ({probe} is not a folder you can "
                         "write)", fix="give a folder you can write, e.g. --out ./kfbox-results")
    return out


def _refuse_foreign(workshop: Workshop, engines: dict[str, Engine]) -> None:
    """A new workshop's seat name must not be a sandbox someone already has."""
    for name, engine in engines.items():
        if StateFolder(name).exists() or engine.status().state != "absent":
            raise UsageError(
                f"sandbox {name!r} already exists and is not a seat of workshop "
                f"{workshop.name!r}",
                fix="choose another workshop --name, or `kfbox --name "
                f"{name} down` if it is yours to remove",
            )


def preflight_seats(
    workshop: Workshop, engines: dict[str, Engine], reporter: Reporter
) -> None:
    """Every seat's host checks before anything is created: the first failure ends the
    command in one line (a port's names its seat); each warning is shown once."""
    warnings: dict[str, str] = {}
    for name, engine in engines.items():
        for check in engine.preflight():
            if check.status == "fail" and check.name.startswith("port "):
                raise PreflightError(
                    f"seat {name}: {check.name}: {check.detail}",
                    fix=f"free it, or choose another --base-port (the seats use ports "
                    f"{workshop.port_range()})",
                )
            if check.status == "fail":
                raise PreflightError(f"preflight: {check.name}: {check.detail}", fix=check.fix)
            if check.status == "warn":
                warnings[f"{check.name}: {check.detail}"] = check.fix
    for line, fix in warnings.items():
        reporter.warn(line + (f" ({fix})" if fix else ""))


def _verify(
    workshop: Workshop, names: list[str], out: Path, parallel: int, reporter: Reporter
) -> None:
    """Verify the named seats and keep each result in the record; the certified seats'
    figures become the host's for the next plan (a failed journey did not do all the work)."""
    results = verify_seats(names, out / workshop.name, parallel, reporter)
    for name, result in results.items():
        workshop.seat(name).verification = result
    workshop.save()
    certified = [
        s.verification for s in workshop.seats
        if s.verification is not None and s.verification.status == "certified"
    ]
    if certified:
        capacity.record_figures(workshop.name, certified)


def _roster(
    workshop: Workshop, engines: dict[str, Engine]
) -> tuple[list[roster.RosterRow], Path]:
    found = roster.rows(workshop, engines)
    return found, roster.write_page(workshop, found)


def up(
    name: str,
    *,
    count: int | None,
    base_port: int | None,
    listen: str | None,
    resources: dict[str, Any],
    parallel: int | None,
    out: Path,
    config: Path | None,
    reporter: Reporter,
) -> tuple[Workshop, list[roster.RosterRow], Path]:
    """Bring every seat up (or repair it) and verify it; the workshop, its roster and page."""
    workshop, new = _planned(name, count, base_port, listen, resources, config)
    engines = engines_of(workshop, config)
    out = _results_folder(out)
    if parallel is not None and parallel < 1:
        raise UsageError(f"--parallel {parallel}: verify at least 1 seat at a time",
                         fix="e.g. --parallel 2, or leave it out to follow the plan")
    chosen = capacity.plan(len(workshop.seats))
    if new:
        _refuse_foreign(workshop, engines)
        if not chosen.fits:
            raise chosen.refusal()
    preflight_seats(workshop, engines, reporter)
    workshop.save()
    for engine in engines.values():  # preflight ran for every seat before the first was made
        bring_up(engine.spec, reporter, provision=False, preflight=False)
    _verify(workshop, list(engines), out, parallel or chosen.parallel(), reporter)
    return workshop, *_roster(workshop, engines)


def status(name: str, config: Path | None) -> tuple[Workshop, list[roster.RosterRow], Path]:
    """Each seat as it is now; the page is written again with what was found."""
    workshop = require(name)
    return workshop, *_roster(workshop, engines_of(workshop, config))


def reset(
    name: str, seat_name: str, *, out: Path, config: Path | None, reporter: Reporter
) -> tuple[Workshop, list[roster.RosterRow], Path]:
    """Replace one seat with a fresh one on the same ports: new token, new volumes, nothing
    kept; then verify it like the others."""
    workshop = require(name)
    seat = workshop.seat(seat_name)
    out = _results_folder(out)
    engine = get_engine(workshop.spec(seat, config))
    preflight_seats(workshop, {seat.name: engine}, reporter)
    left = take_down(engine, reporter, keep_data=False)
    if left:
        raise KfboxError(f"seat {seat.name} could not be removed: {', '.join(left)}",
                         fix="remove them with `docker rm -f` / `docker volume rm`, then retry")
    seat.verification = None
    # The same spec, and a token and volumes made anew; preflight_seats checked it above.
    bring_up(engine.spec, reporter, provision=False, preflight=False)
    _verify(workshop, [seat.name], out, 1, reporter)
    return workshop, *_roster(workshop, engines_of(workshop, config))


def down(name: str, config: Path | None, reporter: Reporter) -> tuple[int, list[str]]:
    """Remove every seat (containers, networks, volumes, state) and the workshop's own state;
    (seats removed, what is still there: empty when nothing is)."""
    workshop = seats.load(seats.check_name(name))
    if workshop is None:
        return 0, []
    left: list[str] = []
    for engine in engines_of(workshop, config).values():
        left += take_down(engine, reporter, keep_data=False)
    seats.forget(workshop.name)
    states = [StateFolder(s.name).path for s in workshop.seats] + [seats.folder(workshop.name)]
    left += [f"state {path}" for path in states if path.exists()]
    return len(workshop.seats), left
