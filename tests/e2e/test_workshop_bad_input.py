"""Bad input to `kfbox workshop`: one line naming the value and the fix, a non-zero exit (2 for
usage, 3 for what this host cannot do), no traceback, and nothing made: no container, network,
volume or state folder for any seat."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from kfbox.apps.workshop.seats import PORTS_PER_SEAT
from kfbox.apps.workshop.verify import verify_seat
from kfbox.host.preflight import meminfo_mib
from tests.support.cli import kfbox_cli
from tests.support.sandboxes import remove_labelled, sandbox_name
from tests.support.workshops import free_base_port, leftovers, seat_names

pytestmark = pytest.mark.e2e
SEATS = 2


@pytest.fixture
def workshop(docker_client, kfbox_home: Path):
    """A workshop name no one uses; the test proves it made nothing (and removes whatever it
    did make, so a failure leaves nothing behind either)."""
    name = sandbox_name("wsbad")
    yield name
    left = leftovers(docker_client, kfbox_home, name, SEATS + 1)
    if left:
        kfbox_cli("--name", name, "workshop", "down")
        for seat in seat_names(name, SEATS + 1):
            remove_labelled(docker_client, seat)
    assert left == []


def refused(done, code: int) -> str:
    """The one line a refused command printed (and that it printed no traceback)."""
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["--seats", "0"], 2, "--seats 0: a workshop has 1 to 99 seats — e.g. --seats 3"),
        (["--seats", "-2"], 2, "--seats -2: a workshop has 1 to 99 seats"),
        ([], 2, "does not exist yet: say how many seats — e.g. `kfbox workshop up --seats 3`"),
        (["--seats", "2", "--listen", "everywhere"], 2,
         "listen: 'everywhere' is not valid (give an IPv4 address of this host, or 0.0.0.0"),
        (["--seats", "2", "--listen", "203.0.113.7"], 3,
         "preflight: listen address: 203.0.113.7 is not an address of this host — give one it "
         "has"),
        (["--seats", "2", "--base-port", "65534"], 2,
         "--base-port 65534: 2 seats need ports 65534-65539, beyond 1024-65535"),
        (["--seats", "2", "--memory", "lots"], 2, "resources.memory: 'lots' is not valid"),
        (["--seats", "2", "--cpus", "0"], 2, "resources.cpus: 0.0 is not valid"),
        (["--seats", "2", "--parallel", "0"], 2, "--parallel 0: verify at least 1 seat"),
    ],
)  # fmt: skip
def test_bad_workshop_up_values(workshop: str, args, code: int, expected: str) -> None:
    ports = [] if "--base-port" in args else ["--base-port", str(free_base_port(SEATS))]
    done = kfbox_cli("--name", workshop, "workshop", "up", *args, *ports)
    assert expected in refused(done, code)


def test_an_out_folder_that_cannot_be_written(workshop: str, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    done = kfbox_cli("--name", workshop, "workshop", "up", "--seats", "2", "--base-port",
                     str(free_base_port(SEATS)), "--out", str(tmp_path / "afile" / "sub"))
    assert f"--out '{tmp_path}/afile/sub' is not writable" in refused(done, 2)


def test_bad_workshop_name(kfbox_home: Path) -> None:
    done = kfbox_cli("--name", "Room A", "workshop", "up", "--seats", "2")
    assert "workshop name 'Room A' is not valid" in refused(done, 2)
    assert not (kfbox_home / "workshops").exists()


def test_a_seat_port_already_taken(workshop: str) -> None:
    base = free_base_port(SEATS)
    second = base + PORTS_PER_SEAT  # the second seat's JupyterLab
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", second))
        taken.listen()
        done = kfbox_cli("--name", workshop, "workshop", "up", "--seats", "2",
                         "--base-port", str(base))
    line = refused(done, 3)
    assert f"seat {workshop}-2: port jupyter: 127.0.0.1:{second} is already in use" in line
    last = base + PORTS_PER_SEAT * 2 - 1
    assert f"choose another --base-port (the seats use ports {base}-{last})" in line


def test_more_seats_than_the_host_can_hold(workshop: str, kfbox_home: Path) -> None:
    """Figures measured on a host where one seat takes most of the memory free now: a second
    does not fit, and `plan` and `up` both say so before anything starts."""
    usable = meminfo_mib()["MemAvailable"] - 1024
    figures = kfbox_home / "measurements" / "seat.json"
    figures.parent.mkdir(parents=True)
    figures.write_text(json.dumps({"idle_memory_mib": 80.0, "peak_memory_mib": usable * 0.75,
                                   "busy_cores": 0.5, "source": "a test"}))
    planned = kfbox_cli("workshop", "plan", "--seats", "3")
    assert "this host can hold at most 1 seat (memory: 3 seats need" in refused(planned, 3)
    assert "per seat:" in planned.stdout and "(a test)" in planned.stdout
    done = kfbox_cli("--name", workshop, "workshop", "up", "--seats", "3",
                     "--base-port", str(free_base_port(3)))
    line = refused(done, 3)
    assert line.endswith("— use --seats 1 or fewer; `kfbox workshop plan --seats 3` shows the "
                         "figures")


def test_a_seat_name_someone_already_uses(workshop: str, kfbox_home: Path) -> None:
    (kfbox_home / "sandboxes" / f"{workshop}-1").mkdir(parents=True)
    done = kfbox_cli("--name", workshop, "workshop", "up", "--seats", "2",
                     "--base-port", str(free_base_port(SEATS)))
    assert (f"sandbox '{workshop}-1' already exists and is not a seat of workshop "
            f"'{workshop}'") in refused(done, 2)
    (kfbox_home / "sandboxes" / f"{workshop}-1").rmdir()


def test_a_config_naming_another_engine(workshop: str, tmp_path: Path) -> None:
    (tmp_path / "kfbox.yaml").write_text("engine: kind\n")
    done = kfbox_cli("--name", workshop, "workshop", "up", "--seats", "2", cwd=tmp_path)
    assert "engine 'kind': a workshop's seats run on the lite engine" in refused(done, 2)


def test_a_listen_address_from_the_config_is_checked_too(workshop: str, tmp_path: Path) -> None:
    (tmp_path / "kfbox.yaml").write_text("lite: {listen: 203.0.113.7}\n")
    done = kfbox_cli("--name", workshop, "workshop", "up", "--seats", "2",
                     "--base-port", str(free_base_port(SEATS)), cwd=tmp_path)
    assert "listen address: 203.0.113.7 is not an address of this host" in refused(done, 3)


@pytest.mark.parametrize("command", [["status"], ["reset", "x-1"]])
def test_a_workshop_that_does_not_exist(workshop: str, command: list[str]) -> None:
    done = kfbox_cli("--name", workshop, "workshop", *command)
    assert f"workshop '{workshop}' does not exist" in refused(done, 3)


def test_down_of_a_workshop_that_does_not_exist_is_a_no_op(workshop: str) -> None:
    done = kfbox_cli("--name", workshop, "workshop", "down")
    assert done.returncode == 0 and f"workshop '{workshop}': nothing to remove" in done.stderr


def test_a_seat_that_cannot_be_verified_says_why(workshop: str, tmp_path: Path) -> None:
    """verify_seat never raises for a journey that fails: the seat reads as not certified with
    certify's own line (here, a seat that was never brought up: no bundle either)."""
    seat = f"{workshop}-1"
    result = verify_seat(seat, tmp_path / seat)
    assert result.status == "not certified" and result.bundle == ""
    assert result.detail.startswith(f"error: sandbox '{seat}' does not exist")
    assert "does not exist" in (tmp_path / seat / "certify.log").read_text()
