"""Metrics from a workload's stdout in Katib's StdOut collector format: `name=value` pairs."""

from __future__ import annotations

import re

PAIR = re.compile(
    r"(?<![\w.-])([A-Za-z_][\w.-]*)\s*=\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])"
)


def parse_series(text: str) -> dict[str, list[float]]:
    """Every value of every `name=value` pair in `text`, in the order printed."""
    series: dict[str, list[float]] = {}
    for line in text.splitlines():
        for name, value in PAIR.findall(line):
            series.setdefault(name, []).append(float(value))
    return series


def parse_metrics(text: str) -> dict[str, float]:
    """Last value of every `name=value` pair in `text`; later lines override earlier ones,
    as Katib keeps the latest observation of a metric."""
    return {name: values[-1] for name, values in parse_series(text).items()}
