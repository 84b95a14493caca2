"""A class on one host, for real: `kfbox workshop up --seats 2 --listen 0.0.0.0` once for the
module (every seat verified with the quick journey), each seat in a rootless Docker engine of
its own (the default), then what the instructor relies on: the seats' ports, tokens and limits,
each seat blind to the other from its own notebook, the roster (table without tokens, 0600 page
with them), status, the platform's own requirements on that address, a reset seat, and
`down`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import requests

from kfbox.apps.workshop.seats import PORTS_PER_SEAT
from kfbox.engines.jupyter import JupyterClient
from kfbox.engines.lite.rootless import sandbox_limits
from kfbox.harness.profiles import Profile
from kfbox.harness.runner import run_suite
from kfbox.host import listen
from kfbox.host.config import Resources, load_spec
from kfbox.host.images.base import base_tag
from kfbox.host.rootless_docker import (
    RootlessDocker,
    engine_limits,
    find_rootless_docker,
    remove_rootless_docker,
)
from tests.support.cli import kfbox_cli, private_home
from tests.support.notebooks import write_notebook
from tests.support.sandboxes import labelled, remove_labelled, sandbox_name
from tests.support.workshops import free_base_port, leftovers, seat_names

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SEATS = 2
LIMITS = {"memory": "3g", "cpus": "1.5"}


class Class:
    """The module's workshop: its name, where its state and bundles live, and `up`'s result."""

    def __init__(self, home: Path, out: Path) -> None:
        self.name = sandbox_name("ws")
        self.home = home
        self.out = out
        self.base = free_base_port(SEATS)
        self.seats = seat_names(self.name, SEATS)
        self.env = {"KFBOX_HOME": str(home)}
        self.up = None

    def cli(self, *args: str, timeout: float = 900):
        return kfbox_cli("--name", self.name, *args, env=self.env, timeout=timeout)

    def token(self, seat: str) -> str:
        return (self.home / "sandboxes" / seat / "jupyter-token").read_text().strip()

    def page(self) -> Path:
        return self.home / "workshops" / self.name / "roster.html"

    def record(self) -> dict:
        return json.loads((self.home / "workshops" / self.name / "workshop.json").read_text())

    def url(self, index: int) -> str:
        return f"http://{listen.public('0.0.0.0')}:{self.base + PORTS_PER_SEAT * index}"

    def engine(self, seat: str) -> RootlessDocker:
        """The seat's own rootless Docker engine (the default engine a seat runs in)."""
        engine = find_rootless_docker(seat)
        assert engine is not None, f"seat {seat} has no rootless Docker engine"
        return engine


@pytest.fixture(scope="module")
def room(docker_client, tmp_path_factory: pytest.TempPathFactory):
    room = Class(private_home(tmp_path_factory.mktemp("ws") / "home"),
                 tmp_path_factory.mktemp("ws-results"))
    room.up = room.cli("workshop", "up", "--seats", str(SEATS), "--base-port", str(room.base),
                       "--listen", "0.0.0.0", "--memory", LIMITS["memory"],
                       "--cpus", LIMITS["cpus"], "--out", str(room.out))
    yield room
    room.cli("workshop", "down")
    for seat in room.seats:
        remove_labelled(docker_client, seat)
        remove_rootless_docker(seat)  # only if `down` failed: it touches only what it made


def test_up_verifies_every_seat_and_keeps_its_bundle(room: Class) -> None:
    assert room.up.returncode == 0, room.up.stdout + room.up.stderr
    assert f"Verifying {SEATS} seat(s) with the quick journey" in room.up.stderr
    for seat in room.seats:
        [bundle] = [p for p in (room.out / room.name / seat).glob("kfbox-quick-*")
                    if p.is_dir() and not p.name.endswith(".workspace")]
        report = json.loads((bundle / "report.json").read_text())
        assert report["certified"] and report["profile"] == "quick"
        assert report["configuration"]["sandbox"] == seat
        assert report["configuration"]["listen"] == "0.0.0.0"
        log = (room.out / room.name / seat / "certify.log").read_text()
        assert "profile quick: CERTIFIED" in log and room.token(seat) not in log
        measured = room.record()["seats"][room.seats.index(seat)]["verification"]
        assert measured["status"] == "certified" and measured["bundle"] == str(bundle)
        assert 0 < measured["idle_memory_mib"] < measured["peak_memory_mib"]
        assert measured["cpu_seconds"] > 0


def test_seats_have_their_own_ports_tokens_and_limits(room: Class, docker_client) -> None:
    tokens = {room.token(seat) for seat in room.seats}
    assert len(tokens) == SEATS
    engines = {seat: room.engine(seat) for seat in room.seats}
    assert len({e.uid for e in engines.values()}) == SEATS  # a user, so an engine, each
    for index, seat in enumerate(room.seats):
        assert labelled(docker_client, seat) == []  # nothing in the host's engine
        client = engines[seat].client()
        jupyter = client.containers.get(f"kfbox-{seat}-jupyter").attrs["HostConfig"]
        registry = client.containers.get(f"kfbox-{seat}-registry").attrs["HostConfig"]
        tracking = client.containers.get(f"kfbox-{seat}-tracking").attrs["HostConfig"]
        first = room.base + PORTS_PER_SEAT * index
        assert jupyter["PortBindings"]["8888/tcp"] == [
            {"HostIp": "0.0.0.0", "HostPort": str(first)}]
        # The registry has no authentication: it stays on loopback whatever the seats listen on.
        assert registry["PortBindings"]["5000/tcp"] == [
            {"HostIp": "127.0.0.1", "HostPort": str(first + 1)}]
        # The seat's own tracking server, behind its login, where the seats listen.
        assert tracking["PortBindings"]["5000/tcp"] == [
            {"HostIp": "0.0.0.0", "HostPort": str(first + 2)}]
        # The seat's limits hold for its whole engine: room for its workloads at that size.
        expected = sandbox_limits(Resources(memory=LIMITS["memory"], cpus=float(LIMITS["cpus"])))
        held = engine_limits(engines[seat].user)
        assert (held["memory"], held["cpus"]) == (float(expected["memory"]), expected["cpus"])
        # Reachable on the host's own address, and only with this seat's token.
        api = f"{room.url(index)}/api/status"
        assert requests.get(api, timeout=10).status_code == 403
        other = next(t for t in tokens if t != room.token(seat))
        assert requests.get(api, params={"token": other}, timeout=10).status_code == 403
        assert requests.get(api, params={"token": room.token(seat)}, timeout=10).ok


def test_each_seat_is_blind_to_the_other_from_its_notebook(room: Class, tmp_path: Path) -> None:
    """From the first seat's kernel, through the engine it holds: only its own containers, and
    the second seat's socket folder and data root closed to a container that binds them (the
    bind is made, as the first engine's user, who may not read the other's 0700 folders)."""
    mine, other = (room.engine(seat) for seat in room.seats)
    targets = {"socket": str(other.runtime_dir), "data": str(other.home)}
    probe = f"targets, image = {json.dumps(targets)}, {base_tag()!r}\n" + (
        "import docker, json\n"
        "engine = docker.from_env()\n"
        "names = sorted(c.name for c in engine.containers.list(all=True))\n"
        "tried = {}\n"
        "for name, path in targets.items():\n"
        "    try:\n"
        "        out = engine.containers.run(image, ['ls', '/other'], remove=True,\n"
        "                                    volumes={path: {'bind': '/other', 'mode': 'ro'}})\n"
        "        tried[name] = 'listed: ' + out.decode()\n"
        "    except docker.errors.DockerException as exc:\n"
        "        tried[name] = 'blocked: ' + str(exc)[:200]\n"
        "print(json.dumps({'names': names, 'tried': tried}))")
    write_notebook(tmp_path / "blind.ipynb", probe)
    token = room.token(room.seats[0])
    client = JupyterClient(f"http://127.0.0.1:{room.base}", token)
    result = client.execute_notebook(tmp_path / "blind.ipynb", "kfbox-tests/blind",
                                     tmp_path / "out.ipynb", timeout_s=300)
    [cell] = json.loads(result.executed.read_text())["cells"]
    seen = json.loads("".join(cell["outputs"][-1]["text"]))
    print(f"\nfrom {room.seats[0]}'s kernel: {seen}")
    assert seen["names"] and all(n.startswith(f"kfbox-{room.seats[0]}-") for n in seen["names"])
    assert all(v.startswith("blocked: ") for v in seen["tried"].values()), seen["tried"]
    assert mine.answers() and other.answers()


def test_the_terminal_roster_has_no_tokens_and_the_page_has_them(room: Class) -> None:
    printed = room.up.stdout + room.up.stderr
    page = room.page()
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    text = page.read_text()
    for index, seat in enumerate(room.seats):
        assert room.token(seat) not in printed
        assert f"{room.url(index)}/lab" in printed
        assert f'href="{room.url(index)}/lab?token={room.token(seat)}"' in text
    assert "listening on 0.0.0.0, every address of this host" in printed
    assert "Seats listen on 0.0.0.0, every address of this host" in text
    assert f"roster with each seat's token (mode 0600, keep it to yourself): {page}" in printed


def test_status_shows_every_seat_and_where_it_listens(room: Class) -> None:
    shown = room.cli("workshop", "status")
    assert shown.returncode == 0, shown.stderr
    assert "listening on 0.0.0.0" in shown.stdout
    assert all(seat in shown.stdout for seat in room.seats)
    assert shown.stdout.count("running") == SEATS and shown.stdout.count("certified") == SEATS
    assert not any(room.token(seat) in shown.stdout + shown.stderr for seat in room.seats)
    one = kfbox_cli("--name", room.seats[0], "status", "--json", env=room.env)
    assert json.loads(one.stdout)["facts"]["listen"] == "0.0.0.0"


def test_platform_requirements_hold_on_the_named_address(
    room: Class, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The component suite against a seat: every port within the declared 0.0.0.0 (the
    registry on loopback), the notebook refusing requests without its token."""
    monkeypatch.setenv("KFBOX_HOME", str(room.home))
    spec = load_spec(None, {"name": room.seats[0]})
    outcome = run_suite(Profile("components", "the platform's own", (), components=True),
                        tmp_path / "run", spec)
    assert outcome.pytest_exit_code == 0
    record = outcome.record
    assert record is not None and record.sandbox.capabilities["listen"] == "0.0.0.0"
    checks = {c.requirement: c for c in record.checks}
    assert checks["platform.listen-address"].passed, checks["platform.listen-address"]
    assert checks["platform.notebook-access"].passed


def test_model_servers_publish_on_the_named_address(room: Class, docker_client) -> None:
    """A kept journey's model server (`test --keep`) is published on the seats' address;
    `down` removes it with the seat."""
    seat = room.seats[0]
    done = kfbox_cli("--name", seat, "test", "--profile", "quick", "--keep",
                     "--out", str(room.out / "kept"), env=room.env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    seat_containers = room.engine(seat).client().containers.list(
        ignore_removed=True, filters={"label": f"kfbox.sandbox={seat}"})
    [server] = [c for c in seat_containers if "-serve-" in c.name]
    [binding] = server.attrs["HostConfig"]["PortBindings"]["8080/tcp"]
    assert binding["HostIp"] == "0.0.0.0"


def volumes_of(client, seat: str) -> dict[str, str]:
    """The seat's volumes and when each was created."""
    found = client.volumes.list(filters={"label": f"kfbox.sandbox={seat}"})
    return {v.name: v.attrs["CreatedAt"] for v in found}


def test_reset_makes_a_fresh_seat_and_leaves_the_others(room: Class, docker_client) -> None:
    first, second = room.seats
    old_token, kept_token = room.token(second), room.token(first)
    old_volumes = volumes_of(room.engine(second).client(), second)
    notes = f"{room.url(1)}/api/contents/notes.txt"
    wrote = requests.put(notes, params={"token": old_token}, timeout=10,
                         json={"type": "file", "format": "text", "content": "mine"})
    assert wrote.status_code == 201
    done = room.cli("workshop", "reset", second, "--out", str(room.out))
    assert done.returncode == 0, done.stdout + done.stderr
    new_token = room.token(second)
    assert new_token != old_token and room.token(first) == kept_token
    volumes = volumes_of(room.engine(second).client(), second)
    assert volumes.keys() == old_volumes.keys()
    assert all(volumes[name] != created for name, created in old_volumes.items())
    assert requests.get(notes, params={"token": new_token}, timeout=10).status_code == 404
    assert requests.get(notes, params={"token": old_token}, timeout=10).status_code == 403
    text = room.page().read_text()
    assert new_token in text and old_token not in text and kept_token in text
    assert stat.S_IMODE(room.page().stat().st_mode) == 0o600
    assert room.record()["seats"][1]["verification"]["status"] == "certified"


def test_bad_input_to_a_running_workshop(room: Class, docker_client) -> None:
    unknown = room.cli("workshop", "reset", f"{room.name}-9")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert unknown.stderr.strip() == (
        f"error: no seat '{room.name}-9' in workshop '{room.name}' — give one of: "
        f"{', '.join(room.seats)}")
    grow = room.cli("workshop", "up", "--seats", "3")
    assert grow.returncode == 2
    assert f"workshop '{room.name}' already has 2 seats on ports" in grow.stderr
    assert labelled(docker_client, f"{room.name}-3") == []
    assert find_rootless_docker(f"{room.name}-3") is None
    assert not (room.home / "sandboxes" / f"{room.name}-3").exists()


def test_down_removes_every_seat_and_proves_it(room: Class, docker_client) -> None:
    done = room.cli("workshop", "down")
    assert done.returncode == 0, done.stderr
    assert (f"workshop '{room.name}': 2 seat(s) removed; nothing labelled with them is left "
            "and no state remains") in done.stderr
    assert leftovers(docker_client, room.home, room.name, SEATS) == []
    assert [find_rootless_docker(seat) for seat in room.seats] == [None] * SEATS
    assert not room.page().exists()
    assert list((room.out / room.name).iterdir())  # the bundles are results, not state: kept
