"""Helpers for the workshop tests: a free block of seat ports, and what a workshop leaves."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import docker

from kfbox.apps.workshop.seats import PORTS_PER_SEAT
from tests.support.sandboxes import labelled


def free_base_port(seats: int) -> int:
    """A base port whose block for `seats` seats is free on every address (the tests listen
    on 0.0.0.0), away from the ephemeral range other tests draw free ports from."""
    for _ in range(200):
        base = random.randrange(20000, 30000, 2)
        ports = range(base, base + PORTS_PER_SEAT * seats)
        if all(_free(port) for port in ports):
            return base
    raise RuntimeError("no free block of seat ports between 20000 and 30000")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def seat_names(workshop: str, seats: int) -> list[str]:
    return [f"{workshop}-{i + 1}" for i in range(seats)]


def leftovers(client: docker.DockerClient, home: Path, workshop: str, seats: int) -> list[str]:
    """Everything a workshop of that name could have made: labelled containers, networks and
    volumes of its seats, their state folders, the workshop's own folder."""
    left = [item for seat in seat_names(workshop, seats) for item in labelled(client, seat)]
    states = [home / "sandboxes" / s for s in seat_names(workshop, seats)]
    states.append(home / "workshops" / workshop)
    return left + [f"state {p}" for p in states if p.exists()]
