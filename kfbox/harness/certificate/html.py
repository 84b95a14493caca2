"""report.html: the certificate as one self-contained page (inline CSS and SVG, no scripts, no
URLs): the verdict, the requirements with their evidence, a timeline of the steps, the training
curve per epoch, the trials (objective per trial, the best marked), the journey pipeline's graph
(each task's state and time), software and host."""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise

from jinja2 import Environment, PackageLoader, select_autoescape

from kfbox.harness.certify import Certificate
from kfbox.harness.records import JourneyRecord

TIMELINE_WIDTH = 720
"""Pixels the longest journey's steps span in the timeline."""
BAR_HEIGHT = 22
LABEL_WIDTH = 160
PLOT_WIDTH, PLOT_HEIGHT, PLOT_MARGIN = 300, 150, 36
PLOT_TOP = 26
"""Pixels above the highest point: the plot's title sits there."""
NOT_PLOTTED = {"epoch", "world_size"}
"""Series a training job prints that are not a curve (the x axis, a constant)."""


@dataclass
class Bar:
    label: str
    status: str
    x: float
    width: float
    duration_s: float

    @property
    def caption(self) -> str:
        """The bar's own text, empty when it would not fit (the hover title still says it)."""
        text = f"{self.label} {self.duration_s:.1f}s"
        return text if self.width >= 7 * len(text) + 8 else ""


@dataclass
class Lane:
    journey: str
    y: int
    bars: list[Bar]


def longest_journey_s(certificate: Certificate) -> float:
    return max((sum(s.duration_s for s in j.steps) for j in certificate.journeys), default=0.0)


def timeline(certificate: Certificate) -> list[Lane]:
    """One lane per journey, its steps laid end to end (they run in sequence), scaled so the
    longest journey fills TIMELINE_WIDTH."""
    longest = longest_journey_s(certificate)
    scale = TIMELINE_WIDTH / longest if longest > 0 else 0.0
    lanes = []
    for index, journey in enumerate(certificate.journeys):
        offset, bars = 0.0, []
        for step in journey.steps:
            bars.append(Bar(step.name, step.status, LABEL_WIDTH + offset * scale,
                            max(step.duration_s * scale, 2.0), step.duration_s))
            offset += step.duration_s
        lanes.append(Lane(f"{journey.scenario} ({journey.variant})",
                          index * (BAR_HEIGHT + 10), bars))
    return lanes


@dataclass
class Plot:
    """One small chart in plot coordinates (the template draws the frame and labels)."""

    title: str
    points: list[tuple[float, float, str]]
    """(x, y, hover text) in pixels inside the plot area."""
    y_low: float
    y_high: float
    x_label: str
    marked: int = -1
    """Index of the point to mark (the best trial), or -1."""

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in self.points)


def _scaled(values: list[float]) -> tuple[list[float], float, float]:
    """y pixels for `values`, highest at the top, and the range they span."""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    inner = PLOT_HEIGHT - PLOT_TOP - 8
    return [PLOT_TOP + inner * (high - v) / span for v in values], low, high


def _x(index: int, count: int) -> float:
    return PLOT_MARGIN + (PLOT_WIDTH - PLOT_MARGIN - 10) * (index / max(count - 1, 1))


def curve_plots(journey: JourneyRecord) -> list[Plot]:
    """One plot per series the training job printed per epoch (loss, accuracy, rmse, ...)."""
    epochs = journey.curve.get("epoch", [])
    plots = []
    for name, values in journey.curve.items():
        if name in NOT_PLOTTED or len(values) < 2:
            continue
        ys, low, high = _scaled(values)
        xs = epochs if len(epochs) == len(values) else list(range(1, len(values) + 1))
        points = [(_x(i, len(values)), y, f"epoch {xs[i]:g}: {name}={values[i]:.4g}")
                  for i, y in enumerate(ys)]
        plots.append(Plot(name, points, low, high, "epoch"))
    return plots


def trials_plot(journey: JourneyRecord) -> Plot | None:
    """The objective of each trial in the order they ran, the best one marked."""
    scored = [t for t in journey.trials if t.objective is not None]
    if not scored:
        return None
    ys, low, high = _scaled([t.objective for t in scored])  # type: ignore[misc]
    points = [(_x(i, len(scored)), y,
               f"{t.name}: {journey.objective}={t.objective:.4g} "
               + " ".join(f"{k}={v}" for k, v in t.parameters.items()))
              for i, (t, y) in enumerate(zip(scored, ys, strict=True))]
    best = next((i for i, t in enumerate(scored) if t.best), -1)
    return Plot(f"{journey.objective} per trial ({journey.goal})", points, low, high, "trial",
                best)


@dataclass
class TaskBox:
    label: str
    state: str
    """kfp's word: SUCCESS, FAILURE, RUNNING (the run ended first)."""
    x: float
    y: float
    title: str


@dataclass
class Graph:
    boxes: list[TaskBox]
    edges: list[tuple[float, float, float, float]]
    width: float
    height: float


TASK_WIDTH, TASK_HEIGHT, TASK_GAP, STAGE_GAP = 120, 24, 8, 60
STATE_CLASS = {"SUCCESS": "passed", "FAILURE": "failed"}
"""A task's box is coloured as a step with that outcome would be (else: interrupted)."""


def pipeline_graph(journey: JourneyRecord) -> Graph | None:
    """The journey pipeline as it ran: one column per stage, a box per task with its state and
    time, an arrow from every task of a stage to every task of the next."""
    step = next((s for s in journey.steps if s.name == "pipeline"), None)
    tasks = step.metrics.get("tasks") if step is not None else None
    if not tasks:
        return None
    stages: dict[int, list[dict]] = {}
    for task in tasks:
        stages.setdefault(int(task.get("stage", 0)), []).append(task)
    tallest = max(len(column) for column in stages.values())
    height = tallest * (TASK_HEIGHT + TASK_GAP) + TASK_GAP
    boxes, columns = [], []
    for column, stage in enumerate(sorted(stages)):
        placed = []
        top = (height - len(stages[stage]) * (TASK_HEIGHT + TASK_GAP)) / 2 + TASK_GAP / 2
        for row, task in enumerate(stages[stage]):
            seconds = task.get("duration_s")
            timing = f"{seconds:.1f}s" if isinstance(seconds, int | float) else "—"
            box = TaskBox(f"{task['task']} {timing}", STATE_CLASS.get(task["state"], "interrupted"),
                          column * (TASK_WIDTH + STAGE_GAP), top + row * (TASK_HEIGHT + TASK_GAP),
                          f"{task['task']}: {task['state']}, {timing}")
            boxes.append(box)
            placed.append(box)
        columns.append(placed)
    edges = [(a.x + TASK_WIDTH, a.y + TASK_HEIGHT / 2, b.x, b.y + TASK_HEIGHT / 2)
             for left, right in pairwise(columns) for a in left for b in right]
    return Graph(boxes, edges, len(columns) * (TASK_WIDTH + STAGE_GAP) - STAGE_GAP + 2, height)


def _metric(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


_ENV = Environment(
    loader=PackageLoader("kfbox.harness.certificate", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["metric"] = _metric


def render_html(certificate: Certificate) -> str:
    """The page; every value goes through autoescaping, secrets were masked beforehand."""
    lanes = timeline(certificate)
    return _ENV.get_template("report.html.j2").render(
        report=certificate,
        lanes=lanes,
        label_width=LABEL_WIDTH,
        axis_end=LABEL_WIDTH + TIMELINE_WIDTH,
        longest_s=longest_journey_s(certificate),
        bar_height=BAR_HEIGHT,
        svg_width=LABEL_WIDTH + TIMELINE_WIDTH + 80,
        svg_height=max(len(lanes), 1) * (BAR_HEIGHT + 10) + 24,
        charts=[(curve_plots(j), trials_plot(j)) for j in certificate.journeys],
        graphs=[pipeline_graph(j) for j in certificate.journeys],
        task_width=TASK_WIDTH,
        task_height=TASK_HEIGHT,
        plot_width=PLOT_WIDTH,
        plot_height=PLOT_HEIGHT,
        plot_margin=PLOT_MARGIN,
        plot_top=PLOT_TOP,
    )
