"""The whole journey on a real lite sandbox, certified through `kfbox certify`, re-read with
`kfbox results`, and the GPU profile's behaviour on a host without a GPU."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kfbox.sandbox.gpu import detect_gpus
from kfbox.sandbox.report.model import JOURNEY_STEPS as STEPS
from kfbox.scenarios.scenario import load_scenario
from tests.conftest import free_port, kfbox_cli
from tests.e2e.conftest import labelled, run_folder, sandbox_name

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sandbox(docker_client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """A sandbox of its own (name, ports, state), brought up once and removed afterwards."""
    import os

    home = tmp_path_factory.mktemp("kfbox-home")
    shared = Path(os.environ.get("KFBOX_HOME", Path.home() / ".kfbox")) / "cache"
    shared.mkdir(parents=True, exist_ok=True)
    (home / "cache").symlink_to(shared)
    name = sandbox_name("journey")
    env = {"KFBOX_HOME": str(home)}
    ports = ["--port", f"jupyter={free_port()}", "--port", f"registry={free_port()}"]
    args = ["--name", name]
    up = kfbox_cli(*args, "up", *ports, env=env)
    assert up.returncode == 0, up.stderr
    yield [*args, "--home", str(home)]
    down = kfbox_cli(*args, "down", env=env)
    assert down.returncode == 0, down.stderr
    assert labelled(docker_client, name) == []


def cli(sandbox: list[str], *args: str):
    """`kfbox` against the module's sandbox (its KFBOX_HOME travels in the environment)."""
    *global_args, _, home = sandbox
    return kfbox_cli(*global_args, *args, env={"KFBOX_HOME": home})


def bundle_report(out: Path) -> tuple[Path, dict]:
    folder = run_folder(out)
    return folder, json.loads((folder / "report.json").read_text())


def test_core_profile_is_certified_with_every_step_measured(sandbox, tmp_path: Path) -> None:
    scenario = load_scenario("digits")
    done = cli(sandbox, "certify", "--profile", "core", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder, report = bundle_report(tmp_path)
    assert report["certified"] is True and report["profile"] == "core"
    [journey] = report["journeys"]
    steps = {s["name"]: s for s in journey["steps"]}
    assert list(steps) == list(STEPS)
    assert all(s["status"] == "passed" and s["duration_s"] > 0 for s in steps.values())
    thresholds = scenario.thresholds
    assert steps["notebook"]["metrics"]["baseline_accuracy"] >= thresholds.baseline_accuracy
    assert steps["train"]["metrics"]["accuracy"] >= thresholds.train_accuracy
    assert steps["train"]["metrics"]["nodes"] == scenario.train.nodes
    assert steps["tune"]["metrics"]["trials"] == scenario.tune.max_trials
    assert steps["tune"]["metrics"]["best_accuracy"] >= thresholds.tune_accuracy
    assert steps["serve"]["metrics"]["accuracy"] >= thresholds.serve_accuracy
    assert steps["build"]["metrics"]["digest"].startswith("sha256:")
    # The bundle: folder and tarball, the executed notebook among the logs, no token anywhere.
    assert (folder / "junit.xml").is_file() and (folder / "report.html").is_file()
    assert list((folder / "logs").rglob("*.executed.ipynb"))
    assert not (folder / "workspace").exists(), "the run's own files stay out of the bundle"
    with tarfile.open(f"{folder}.tar.gz") as archive:
        assert any(n.endswith("report.json") for n in archive.getnames())
    token = (Path(sandbox[-1]) / "sandboxes" / sandbox[1] / "jupyter-token").read_text().strip()
    leaked = [p for p in folder.rglob("*") if p.is_file() and token in p.read_text(errors="ignore")]
    assert not leaked, leaked
    reread = kfbox_cli("results", f"{folder}.tar.gz")
    assert reread.returncode == 0 and "certified" in reread.stdout.lower()


@pytest.mark.skipif(detect_gpus().present, reason="this host has a GPU: the gpu journey runs")
def test_gpu_profile_without_a_gpu_skips_and_is_not_certified(sandbox, tmp_path: Path) -> None:
    done = cli(sandbox, "test", "--profile", "gpu", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-2000:]
    run = run_folder(tmp_path)
    [journey] = json.loads((run / "journeys.json").read_text())
    assert {s["status"] for s in journey["steps"]} == {"skipped"}
    assert all("no GPU" in s["reason"] for s in journey["steps"])
    certify = cli(sandbox, "certify", "--profile", "gpu", "--out", str(tmp_path / "bundle"))
    assert certify.returncode != 0  # a skip is never a pass


@pytest.mark.skipif(detect_gpus().present, reason="this host has a GPU: the gpu journey runs")
def test_require_gpu_turns_the_skips_into_failures(sandbox, tmp_path: Path) -> None:
    done = cli(sandbox, "test", "--profile", "gpu", "--require-gpu", "--out", str(tmp_path))
    assert done.returncode == 1
    run = run_folder(tmp_path)
    [journey] = json.loads((run / "journeys.json").read_text())
    assert {s["status"] for s in journey["steps"]} == {"failed"}
