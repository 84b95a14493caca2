"""The listen address in plain words: whether this host has it, and where people connect to it."""

from __future__ import annotations

import socket

from kfbox.host.config import LOOPBACK

ALL = "0.0.0.0"
UNROUTED = ("10.255.255.255", 1)
"""Any address will do: connecting a UDP socket sends nothing, it only picks the source address
the host's routes would use, i.e. the address other machines most likely reach it on."""


def is_loopback(address: str) -> bool:
    return address.startswith("127.")


def host_has(address: str) -> bool:
    """Whether a port can be published on `address` here: 0.0.0.0, or an address of this host
    (binding any other address fails with EADDRNOTAVAIL)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


def reach(address: str) -> str:
    """The address this host's own clients connect to for a port published on `address`."""
    return LOOPBACK if address == ALL else address


def public(address: str) -> str:
    """The address a person on another machine opens: the named one, or for 0.0.0.0 the one on
    the host's default route (loopback when the host has no route at all)."""
    if address != ALL:
        return address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(UNROUTED)
            return sock.getsockname()[0]
        except OSError:
            return LOOPBACK


def describe(address: str) -> str:
    """The listen address and who can connect, for status lines and the roster."""
    if is_loopback(address):
        return f"{address} (this host only)"
    if address == ALL:
        return (f"{ALL}, every address of this host: other machines can connect, e.g. to "
                f"{public(address)}; the notebook still requires its token")
    return f"{address}: other machines on its network can connect; the notebook still requires " \
        "its token"
