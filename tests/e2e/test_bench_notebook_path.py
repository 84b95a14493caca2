"""`kfbox bench` times the person's path: the five tutorials in the kernel of a sandbox behind
the person's boundary (a rootless engine of its own), beside the journey's steps there, and
removes that sandbox, its engine and its user. It runs in the rest's stream (bin/run-tests):
its sandbox is `nbpath-*`, which the bad-input table beside it does not watch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kfbox.host.rootless_docker import rootless_dockers
from tests.support.cli import kfbox_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_persons_path_is_timed_beside_the_journey_and_leaves_nothing(kfbox_home,
                                                                         tmp_path: Path):
    out = tmp_path / "bench.json"
    done = kfbox_cli("bench", "--no-journey", "--train-runs", "0", "--tune-runs", "0",
                     "--serve-requests", "0", "--out", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    figures = {name: item["value"] for name, item in result["figures"].items()}
    for name in ("rootless_up_s", "notebook_path_s", "notebook_path_vs_steps_ratio",
                 "tutorial_trains_s", "tutorial_tunes_s", "tutorial_builds_s",
                 "tutorial_serves_s", "tutorial_pipelines_s"):
        assert figures[name] > 0, name
    assert figures["notebook_path_s"] == pytest.approx(sum(
        value for name, value in figures.items() if name.startswith("tutorial_")), abs=0.01)
    assert result["notes"] == []  # nothing left behind
    assert not [e.user for e in rootless_dockers() if e.sandbox.startswith("nbpath-")]
