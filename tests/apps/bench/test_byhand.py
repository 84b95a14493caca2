"""The bench's side-by-side measure: each way runs once per run, the order alternating so that
neither always goes second onto caches the other warmed, and medians are what it reports."""

from __future__ import annotations

from kfbox.apps.bench import byhand
from kfbox.apps.bench.byhand import SideBySide, alternating
from kfbox.host.progress import quiet_reporter


def test_the_order_alternates_run_by_run_and_medians_are_reported(monkeypatch):
    order: list[str] = []
    seconds = {"harness": [3.0, 1.0, 2.0], "docker run": [1.0, 7.0, 1.5]}
    clock = [0.0]  # each way's work moves this clock by its seconds: no real waiting
    monkeypatch.setattr(byhand.time, "monotonic", lambda: clock[0])

    def way(name: str):
        def work(run: int) -> None:
            order.append(f"{name}{run}")
            clock[0] += seconds[name][run - 1]
        return work

    medians = alternating("step", {"harness": way("harness"), "docker run": way("docker run")},
                          3, quiet_reporter())
    assert order == ["harness1", "docker run1", "docker run2", "harness2", "harness3",
                     "docker run3"]
    assert medians == {"harness": 2.0, "docker run": 1.5}


def test_a_trials_overhead_is_its_median_through_the_harness_less_by_hand():
    step = SideBySide(12.0, 8.0, harness_items_s=[5.0, 4.0, 6.0], by_hand_items_s=[3.0, 2.5, 9.0])
    assert step.ratio == 1.5
    assert step.item_overhead_s == 2.0
