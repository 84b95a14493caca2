"""report.html: the report as one self-contained page (inline CSS and SVG, no scripts, no URLs)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, select_autoescape

from kfbox.sandbox.report.document import Report

TIMELINE_WIDTH = 720
"""Pixels the longest journey's steps span in the timeline."""
BAR_HEIGHT = 22
LABEL_WIDTH = 160


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


def longest_journey_s(report: Report) -> float:
    return max((sum(s.duration_s for s in j.steps) for j in report.journeys), default=0.0)


def timeline(report: Report) -> list[Lane]:
    """One lane per journey, its steps laid end to end (they run in sequence), scaled so the
    longest journey fills TIMELINE_WIDTH."""
    longest = longest_journey_s(report)
    scale = TIMELINE_WIDTH / longest if longest > 0 else 0.0
    lanes = []
    for index, journey in enumerate(report.journeys):
        offset, bars = 0.0, []
        for step in journey.steps:
            bars.append(Bar(step.name, step.status, LABEL_WIDTH + offset * scale,
                            max(step.duration_s * scale, 2.0), step.duration_s))
            offset += step.duration_s
        lanes.append(Lane(journey.scenario, index * (BAR_HEIGHT + 10), bars))
    return lanes


def _metric(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


_ENV = Environment(
    loader=PackageLoader("kfbox.sandbox.report", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["metric"] = _metric


def render_html(report: Report) -> str:
    """The page; every value goes through autoescaping, secrets were masked in `report`."""
    lanes = timeline(report)
    return _ENV.get_template("report.html.j2").render(
        report=report,
        lanes=lanes,
        label_width=LABEL_WIDTH,
        axis_end=LABEL_WIDTH + TIMELINE_WIDTH,
        longest_s=longest_journey_s(report),
        bar_height=BAR_HEIGHT,
        svg_width=LABEL_WIDTH + TIMELINE_WIDTH + 80,
        svg_height=max(len(lanes), 1) * (BAR_HEIGHT + 10) + 24,
    )
