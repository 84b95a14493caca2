"""The listen address: its syntax in the spec, preflight's check that this host has it, ports
checked where they will be published, and the plain words status and the roster use."""

from __future__ import annotations

import socket

import pytest

from kfbox.host import listen
from kfbox.host.config import load_spec
from kfbox.host.errors import UsageError
from kfbox.host.preflight import check_listen, check_ports

# Tests that need no engine never read or write the user's real kfbox state.
pytestmark = pytest.mark.usefixtures("kfbox_home")

NOT_OURS = "203.0.113.7"
"""TEST-NET-3 (RFC 5737): no host has it."""


def test_loopback_unless_named_and_the_registry_stays_there() -> None:
    spec = load_spec(None, {"name": "lt"})
    assert spec.lite.listen == "127.0.0.1"
    named = load_spec(None, {"name": "lt", "lite.listen": "0.0.0.0"})
    assert named.lite.address_of("jupyter") == "0.0.0.0"
    assert named.lite.address_of("registry") == "127.0.0.1"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"lite.listen": "everywhere"},
         "lite.listen: 'everywhere' is not valid (give an IPv4 address"),
        ({"lite.listen": "::"}, "lite.listen: '::' is not valid"),
    ],
)
def test_bad_listen_values_are_one_usage_line(overrides, expected: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_spec(None, {"name": "lt", **overrides})
    assert expected in caught.value.line() and "\n" not in caught.value.line()
    assert caught.value.exit_code == 2


def test_preflight_refuses_an_address_this_host_lacks_and_warns_beyond_loopback() -> None:
    refused = check_listen(NOT_OURS)
    assert refused.status == "fail" and NOT_OURS in refused.detail and "0.0.0.0" in refused.fix
    assert check_listen("127.0.0.1").status == "pass"
    everywhere = check_listen("0.0.0.0")
    assert everywhere.status == "warn" and "other machines can connect" in everywhere.detail


def test_ports_are_checked_on_the_address_they_will_be_published_on() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = load_spec(None, {"name": "lt", "ports.jupyter": port})
        [jupyter] = [c for c in check_ports(spec, listen_address="0.0.0.0")
                     if c.name == "port jupyter"]
    assert jupyter.status == "fail" and jupyter.detail == f"0.0.0.0:{port} is already in use"


def test_where_this_host_and_other_machines_connect() -> None:
    assert listen.reach("0.0.0.0") == "127.0.0.1" and listen.reach("127.0.0.1") == "127.0.0.1"
    assert listen.public("127.0.0.1") == "127.0.0.1"
    assert listen.host_has(listen.public("0.0.0.0"))
    assert not listen.host_has(NOT_OURS)
    assert "this host only" in listen.describe("127.0.0.1")
