"""`kfbox bench` measures on a throwaway sandbox and leaves nothing behind (numbers are
reported, never asserted against their targets: this machine is noisy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kfbox.sandbox.bench import TARGETS
from kfbox.sandbox.docker_engine import LABEL
from tests.conftest import kfbox_cli

pytestmark = pytest.mark.e2e


def test_bench_reports_every_number_and_cleans_up(docker_client, kfbox_home, tmp_path: Path):
    before = {
        c.labels[LABEL] for c in docker_client.containers.list(all=True, filters={"label": LABEL})
    }
    out = tmp_path / "bench.json"
    done = kfbox_cli("bench", "--train-runs", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    numbers = result["numbers"]
    for key in (
        "first_up_s",
        "warm_up_s",
        "re_up_s",
        "idle_memory_mib",
        "train_harness_s",
        "train_docker_run_s",
        "train_docker_run_torchrun_s",
        "train_overhead_ratio",
    ):
        assert numbers[key] > 0, key
    assert set(result["within_target"]) == set(TARGETS)
    assert "cleanup" not in result["notes"]
    after = {
        c.labels[LABEL] for c in docker_client.containers.list(all=True, filters={"label": LABEL})
    }
    assert after <= before, f"bench left containers of {after - before}"
