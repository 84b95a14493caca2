"""Metrics from a workload's stdout in Katib's StdOut collector format: `name=value` pairs."""

from __future__ import annotations

import re

PAIR = re.compile(
    r"(?<![\w.-])([A-Za-z_][\w.-]*)\s*=\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])"
)


def parse_metrics(text: str) -> dict[str, float]:
    """Last value of every `name=value` pair in `text`; later lines override earlier ones,
    as Katib keeps the latest observation of a metric."""
    metrics: dict[str, float] = {}
    for line in text.splitlines():
        for name, value in PAIR.findall(line):
            metrics[name] = float(value)
    return metrics
