"""Workshops without an engine: seats and their ports, the record, the plan's arithmetic and
refusal, the figures it uses, and the roster (terminal without tokens, the 0600 page with)."""

from __future__ import annotations

import io
import json
import stat
from html.parser import HTMLParser

import pytest
from rich.console import Console

from kfbox.apps.workshop import capacity, roster, seats
from kfbox.apps.workshop.capacity import HostCapacity, Plan, SeatFigures
from kfbox.apps.workshop.seats import Verification
from kfbox.host.errors import KfboxError, PreflightError, UsageError

# Tests that need no engine never read or write the user's real kfbox state.
pytestmark = pytest.mark.usefixtures("kfbox_home")

TOKEN = "f00dfeed" * 6
FIGURES = SeatFigures(100.0, 1024.0, 0.5, "test")


def verification(**changes) -> Verification:
    fields = dict(status="certified", detail="", bundle="/out/ws-1/kfbox-quick-x", seconds=30.0,
                  idle_memory_mib=80.0, peak_memory_mib=900.0, cpu_seconds=15.0,
                  busy_cores=0.5, verified_at="2026-01-01T00:00:00+00:00")
    return Verification(**(fields | changes))


def test_seats_are_named_and_numbered_with_three_ports_each() -> None:
    workshop = seats.new_workshop("lab", 3, 20000, "127.0.0.1", {})
    assert [(s.name, s.jupyter, s.registry, s.tracking) for s in workshop.seats] == [
        ("lab-1", 20000, 20001, 20002), ("lab-2", 20003, 20004, 20005),
        ("lab-3", 20006, 20007, 20008)]
    assert workshop.port_range() == "20000-20008"
    spec = workshop.spec(workshop.seats[1], None)
    assert (spec.name, spec.ports.jupyter, spec.ports.registry, spec.ports.tracking,
            spec.lite.listen, "tracking" in spec.lite.components) == (
        "lab-2", 20003, 20004, 20005, "127.0.0.1", True)


def test_a_seat_recorded_before_seats_tracked_keeps_its_two_ports() -> None:
    workshop = seats.new_workshop("lab", 1, 20000, "127.0.0.1", {})
    older = seats.Seat("lab-1", 20000, 20001)
    spec = workshop.spec(older, None)
    assert spec.lite.components == ["jupyter", "registry", "store"]


@pytest.mark.parametrize(
    ("name", "count", "base", "expected"),
    [
        ("lab", 0, 20000, "--seats 0: a workshop has 1 to 99 seats"),
        ("lab", 100, 20000, "--seats 100: a workshop has 1 to 99 seats"),
        ("Lab Room", 2, 20000, "workshop name 'Lab Room' is not valid"),
        ("a" * 28, 2, 20000, "is not valid (1-27 characters"),
        ("lab", 2, 65531, "--base-port 65531: 2 seats need ports 65531-65536"),
        ("lab", 2, 80, "--base-port 80: 2 seats need ports 80-85"),
    ],
)
def test_bad_workshop_values_are_one_usage_line(name, count, base, expected) -> None:
    with pytest.raises(UsageError) as caught:
        seats.new_workshop(name, count, base, "127.0.0.1", {})
    assert expected in caught.value.line() and "\n" not in caught.value.line()
    assert caught.value.fix and caught.value.exit_code == 2


def test_limits_and_listen_reach_every_seat_spec_and_bad_ones_are_refused() -> None:
    workshop = seats.new_workshop("lab", 1, 20000, "0.0.0.0", {"memory": "2g", "cpus": 1.0})
    spec = workshop.spec(workshop.seats[0], None)
    assert (spec.resources.memory, spec.resources.cpus, spec.lite.listen) == ("2g", 1.0, "0.0.0.0")
    bad = seats.new_workshop("lab", 1, 20000, "0.0.0.0", {"memory": "lots"})
    with pytest.raises(UsageError, match=r"resources\.memory: 'lots' is not valid"):
        bad.spec(bad.seats[0], None)


def test_a_seat_that_does_not_exist_names_the_ones_that_do() -> None:
    workshop = seats.new_workshop("lab", 2, 20000, "127.0.0.1", {})
    with pytest.raises(UsageError) as caught:
        workshop.seat("lab-9")
    assert caught.value.line() == "no seat 'lab-9' in workshop 'lab' — give one of: lab-1, lab-2"


def test_the_record_round_trips_with_verifications() -> None:
    workshop = seats.new_workshop("lab", 2, 20000, "0.0.0.0", {"cpus": 1.5})
    workshop.seats[0].verification = verification()
    workshop.save()
    assert seats.load("lab") == workshop
    seats.forget("lab")
    assert seats.load("lab") is None and not seats.folder("lab").exists()


def test_memory_must_fit_outright_and_cpu_within_the_slowdown() -> None:
    host = HostCapacity(cores=2, total_mib=24_000, available_mib=11_240)
    plan = Plan(3, FIGURES, host)
    # (11240 - 1024 reserved) / 1024 per seat = 9 seats; 2 cores x 4 / 0.5 busy = 16 seats.
    assert (plan.by_memory, plan.by_cpu, plan.allowed, plan.fits) == (9, 16, 9, True)
    assert plan.parallel() == 1  # 2 cores, 2 per verification
    assert Plan(3, FIGURES, HostCapacity(16, 64_000, 60_000)).parallel() == 3  # no more than seats
    assert "this host can hold 3 seats (at most 9)" in plan.verdict()
    refused = Plan(12, FIGURES, host).refusal()
    assert isinstance(refused, PreflightError) and refused.exit_code == 3
    assert refused.line().startswith("--seats 12: this host can hold at most 9 seats (memory:")
    assert "use --seats 9 or fewer" in refused.line()
    busy = Plan(20, SeatFigures(100.0, 100.0, 1.0, "test"), host).refusal()
    assert "at most 8 seats (cpu:" in busy.line()


def test_the_plan_uses_recorded_figures_else_says_it_uses_the_defaults() -> None:
    assert capacity.recorded_figures() == capacity.DEFAULT_FIGURES
    assert "defaults measured on a 2-core / 24 GB host" in capacity.DEFAULT_FIGURES.source
    kept = capacity.record_figures("lab", [verification(peak_memory_mib=700.0),
                                           verification(peak_memory_mib=950.0, busy_cores=0.7)])
    assert (kept.peak_memory_mib, kept.busy_cores) == (950.0, 0.7)
    assert capacity.recorded_figures() == kept
    assert "measured by workshop 'lab' verifying 2 seat(s)" in capacity.plan(2).lines()[1]


def rows() -> list[roster.RosterRow]:
    return [
        roster.RosterRow("lab-1", "http://192.0.2.2:20000/lab", TOKEN, "running", "certified",
                         "", "/out/lab/lab-1/kfbox-quick-x"),
        roster.RosterRow("lab-2", "http://192.0.2.2:20002/lab", "", "absent", "not certified",
                         "<script>alert(1)</script>", ""),
    ]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.css = ""
        self._style = False

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))
        self._style = tag == "style"

    def handle_endtag(self, tag) -> None:
        self._style = False

    def handle_data(self, data) -> None:
        if self._style:
            self.css += data


def test_the_page_is_self_contained_escaped_and_links_only_to_seats() -> None:
    workshop = seats.new_workshop("lab", 2, 20000, "0.0.0.0", {})
    page = roster.render_page(workshop, rows())
    parsed = _Tags()
    parsed.feed(page)
    assert not {t for t, _ in parsed.tags} & {"script", "link", "img", "iframe", "object",
                                               "embed", "base", "form", "source"}
    links = [a["href"] for t, a in parsed.tags if t == "a"]
    assert links == [f"http://192.0.2.2:20000/lab?token={TOKEN}"]
    for _, attrs in parsed.tags:
        assert not any(name.startswith("on") or name in {"src", "action"} for name in attrs)
    assert "url(" not in parsed.css and "@import" not in parsed.css
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "Seats listen on 0.0.0.0, every address of this host" in page
    assert "none: the seat is absent" in page


def test_the_page_is_written_0600_even_over_a_readable_one() -> None:
    workshop = seats.new_workshop("lab", 2, 20000, "127.0.0.1", {})
    path = roster.page_path("lab")
    path.parent.mkdir(parents=True)
    path.write_text("old")
    path.chmod(0o644)
    assert roster.write_page(workshop, rows()) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and TOKEN in path.read_text()


def test_the_terminal_table_has_no_token_and_says_where_seats_listen() -> None:
    workshop = seats.new_workshop("lab", 2, 20000, "127.0.0.1", {})
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(roster.table(workshop, rows()))
    text = buffer.getvalue()
    assert TOKEN not in text and "http://192.0.2.2:20000/lab" in text
    assert "listening on 127.0.0.1 (this host only)" in text



def test_a_record_from_another_kfbox_still_loads_or_says_how_to_clean_up() -> None:
    workshop = seats.new_workshop("lab", 2, 20000, "127.0.0.1", {})
    workshop.seats[0].verification = verification()
    workshop.save()
    data = json.loads(seats.record_file("lab").read_text())
    data["seats"][0]["verification"]["added_later"] = 1.0
    del data["seats"][1]["jupyter"]
    seats.record_file("lab").write_text(json.dumps(data))
    with pytest.raises(KfboxError) as caught:
        seats.load("lab")
    assert "kfbox --name lab-N down" in caught.value.line()
    data["seats"][1]["jupyter"] = 20002
    del data["seats"][1]["registry"]
    data["seats"][1] |= {"registry": 20003, "verification": {"status": "certified"}}
    seats.record_file("lab").write_text(json.dumps(data))
    loaded = seats.load("lab")
    assert loaded is not None and loaded.seats[0].verification == verification()
    assert loaded.seats[1].verification is None  # recorded with fields this kfbox lacks
