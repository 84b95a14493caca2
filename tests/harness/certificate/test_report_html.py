"""report.html: self-contained (no scripts, no external URLs), escaped, the verdict, every
requirement with its evidence, every step, a timeline whose bars follow the step durations,
and the training curve and the trials drawn from the records."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from itertools import pairwise

from kfbox.harness.certificate.html import (
    LABEL_WIDTH,
    TIMELINE_WIDTH,
    curve_plots,
    pipeline_graph,
    render_html,
    timeline,
    trials_plot,
)
from kfbox.harness.records import TrialRecord
from kfbox.harness.requirements import STEPS
from tests.support.records import journey, make_certificate

FETCHING_TAGS = {"script", "link", "img", "iframe", "object", "embed", "audio", "video",
                 "source", "base", "frame"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def _parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    return collector


def test_the_page_is_self_contained() -> None:
    page = render_html(make_certificate(journeys=[journey(tune="failed", serve="blocked")]))
    parsed = _parse(page)
    assert not {tag for tag, _ in parsed.tags} & FETCHING_TAGS
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            assert not (name in {"href", "src", "srcset", "action", "xmlns"} or
                        name.startswith("on")), f"<{tag} {name}={value!r}>"
            assert "://" not in (value or ""), f"<{tag} {name}={value!r}>"
    css = "".join(parsed.styles)
    assert css and "url(" not in css and "@import" not in css
    assert "http" not in page


def test_verdict_steps_and_reasons_are_on_the_page() -> None:
    report = make_certificate(journeys=[journey(tune="failed", track="blocked",
                                                serve="blocked", pipeline="blocked")],
                              exit_code=1)
    page = render_html(report)
    assert "Profile core: NOT CERTIFIED" in page
    rows = re.findall(r'data-step="digits/(\w+)" data-status="(\w+)"', page)
    assert rows == [("notebook", "passed"), ("build", "passed"), ("train", "passed"),
                    ("tune", "failed"), ("track", "blocked"), ("serve", "blocked"),
                    ("pipeline", "blocked")]
    assert "tune went failed on purpose" in page and "accuracy=0.95" in page
    assert "Profile core: CERTIFIED" in render_html(make_certificate())
    requirements = dict(re.findall(r'data-requirement="([\w.-]+)" data-status="([\w-]+)"', page))
    assert requirements["train.process-group"] == "passed"
    assert requirements["tune.best"] == "blocked"
    assert "train.process-group held" in page  # the evidence, beside its test id
    assert "test_step[core-train]" in page


def test_hostile_text_is_escaped() -> None:
    record = journey(build="failed")
    record.steps[1].reason = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    page = render_html(make_certificate(journeys=[record]))
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page


def test_timeline_bars_follow_the_durations() -> None:
    short, long = journey(scenario="short"), journey(scenario="long")
    for step in long.steps:
        step.duration_s *= 2
    lanes = timeline(make_certificate(journeys=[short, long]))
    assert [lane.journey for lane in lanes] == ["short (core)", "long (core)"]
    long_bars = lanes[1].bars
    assert [bar.label for bar in long_bars] == list(STEPS)
    assert long_bars[0].x == LABEL_WIDTH
    assert abs(long_bars[-1].x + long_bars[-1].width - (LABEL_WIDTH + TIMELINE_WIDTH)) < 1e-6
    for a, b in pairwise(long_bars):
        assert abs(a.x + a.width - b.x) < 1e-6  # end to end, in run order
    assert abs(lanes[0].bars[2].width * 2 - long_bars[2].width) < 1e-6
    page = render_html(make_certificate(journeys=[short, long]))
    assert page.count('<rect class="bar-') == 2 * len(STEPS)


def test_a_run_without_journeys_says_so() -> None:
    page = render_html(make_certificate(journeys=[], exit_code=None,
                                        error="sandbox is not running"))
    assert "No journey ran." in page and "sandbox is not running" in page


def test_the_training_curve_and_the_trials_are_drawn() -> None:
    record = journey()
    record.trials.append(TrialRecord("trial-2", {"lr": "0.05"}, None, False))
    plots = curve_plots(record)
    assert [p.title for p in plots] == ["loss", "accuracy"]  # epoch is the x axis
    loss = plots[0]
    assert len(loss.points) == 3 and loss.y_low == 0.3 and loss.y_high == 0.9
    ys = [y for _, y, _ in loss.points]
    assert ys[0] < ys[-1]  # the loss falls: its first point is drawn highest
    assert "epoch 2: loss=0.5" in loss.points[1][2]
    trials = trials_plot(record)
    assert trials is not None and len(trials.points) == 2  # the silent trial has no point
    assert trials.marked == 1 and "trial-1: accuracy=0.96 lr=0.02" in trials.points[1][2]
    page = render_html(make_certificate(journeys=[record]))
    assert page.count('<svg class="plot curve"') == 2
    assert page.count('<svg class="plot trials"') == 1
    assert page.count('<circle class="best"') == 1
    assert '<tr class="trial best"><td>trial-1 (best)</td>' in page


def test_the_pipeline_is_drawn_task_by_task_with_its_state_and_time() -> None:
    record = journey(pipeline="failed")
    tasks = [{"task": "trial", "state": "SUCCESS", "duration_s": 4.2, "stage": 0},
             {"task": "trial", "state": "SUCCESS", "duration_s": 4.4, "stage": 0},
             {"task": "train", "state": "SUCCESS", "duration_s": 3.9, "stage": 0},
             {"task": "best", "state": "SUCCESS", "duration_s": 0.3, "stage": 1},
             {"task": "gate", "state": "FAILURE", "duration_s": 0.2, "stage": 2}]
    record.steps[-1].metrics = {"tasks": tasks}
    graph = pipeline_graph(record)
    assert graph is not None
    assert [(b.label, b.state) for b in graph.boxes] == [
        ("trial 4.2s", "passed"), ("trial 4.4s", "passed"), ("train 3.9s", "passed"),
        ("best 0.3s", "passed"), ("gate 0.2s", "failed")]
    assert len(graph.edges) == 3 + 1  # every first-stage task into best, best into gate
    assert len({b.x for b in graph.boxes}) == 3  # one column per stage
    page = render_html(make_certificate(journeys=[record], exit_code=1))
    assert re.findall(r'class="task" data-state="(\w+)"><title>([^<]+)</title>', page)[-1] == (
        "failed", "gate: FAILURE, 0.2s")
    assert pipeline_graph(journey("quick")) is None  # no pipeline step, no graph
