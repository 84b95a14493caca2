"""The whole journey on a real lite sandbox, certified through `kfbox certify` for every shipped
scenario (classification and regression), re-read with `kfbox results`; the full profile's
platform requirements; the GPU profile's behaviour on a host without a GPU; and a sandbox that
does not exist failing `test` and `certify` in one line."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kfbox.harness.requirements import STEPS
from kfbox.host.docker_engine import LABEL
from kfbox.host.gpu import detect_gpus
from kfbox.scenarios.scenario import list_scenarios, load_scenario
from tests.support.cli import kfbox_cli
from tests.support.net import free_port
from tests.support.sandboxes import labelled, run_folder, run_record, sandbox_name

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


@pytest.mark.parametrize("name", list_scenarios())
def test_core_profile_certifies_each_scenario_with_every_step_measured(
    sandbox, tmp_path: Path, name: str
) -> None:
    scenario = load_scenario(name)
    done = cli(sandbox, "certify", "--profile", "core", "--scenario", name, "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder, report = bundle_report(tmp_path)
    assert report["certified"] is True and report["profile"] == "core"
    assert report["configuration"] | {"sandbox": ""} == {
        "engine": "lite", "sandbox": "", "profile": "core", "scenario": name, "gpus": 0,
        "source": "online", "bundle": "", "listen": "127.0.0.1"}
    # The certificate names the software it certified, read from the images and the host.
    for software in ("python", "torch", "kserve", "kubeflow", "optuna", "jupyterlab",
                     "jupyter_server", "docker", "kfbox"):
        assert report["software"].get(software), software
    # Every requirement passed, with evidence from the test that checked it.
    assert {r["status"] for r in report["requirements"]} == {"passed"}
    assert all(r["evidence"] and r["evidence"][0]["test_id"] for r in report["requirements"])
    group = next(r for r in report["requirements"] if r["id"] == "train.process-group")
    assert group["evidence"][0]["detail"] == f"world_size={scenario.train.nodes} for " \
                                             f"{scenario.train.nodes} node(s)"
    [journey] = report["journeys"]
    steps = {s["name"]: s for s in journey["steps"]}
    assert list(steps) == list(STEPS)
    assert all(s["status"] == "passed" and s["duration_s"] > 0 for s in steps.values())
    for step, conditions in scenario.checks.model_dump().items():
        for condition in conditions:
            value = steps[step]["metrics"].get(condition["metric"]) if step != "tune" else \
                steps["tune"]["metrics"][f"best_{scenario.tune.objective}"]
            assert value is not None, (step, condition)
    assert steps["train"]["metrics"]["nodes"] == scenario.train.nodes
    assert steps["tune"]["metrics"]["trials"] == scenario.tune.max_trials
    assert steps["build"]["metrics"]["digest"].startswith("sha256:")
    # The plots' data: a training curve per epoch, every trial with the best marked.
    epochs = int(scenario.train.args["epochs"])
    assert journey["curve"]["epoch"] == [float(e) for e in range(1, epochs + 1)]
    assert len(journey["trials"]) == scenario.tune.max_trials
    assert sum(t["best"] for t in journey["trials"]) == 1
    # The bundle: folder and tarball, every workload's log, no workspace, no token anywhere.
    assert (folder / "junit.xml").is_file() and (folder / "report.html").is_file()
    logs = folder / "logs"
    assert list(logs.rglob("*.executed.ipynb"))
    assert "world_size=" in (logs / "core" / "train.log").read_text()
    assert len(list((logs / "core" / "tune").glob("*.log"))) == scenario.tune.max_trials
    assert "ready" in (logs / "core" / "serve.log").read_text().lower()
    assert not (folder / "workspace").exists(), "the run's own files stay out of the bundle"
    assert sorted(p.name for p in folder.iterdir()) == ["junit.xml", "logs", "report.html",
                                                        "report.json"]
    with tarfile.open(f"{folder}.tar.gz") as archive:
        assert any(n.endswith("report.json") for n in archive.getnames())
    token = (Path(sandbox[-1]) / "sandboxes" / sandbox[1] / "jupyter-token").read_text().strip()
    leaked = [p for p in folder.rglob("*") if p.is_file() and token in p.read_text(errors="ignore")]
    assert not leaked, leaked
    reread = kfbox_cli("results", f"{folder}.tar.gz")
    assert reread.returncode == 0 and "certified" in reread.stdout.lower()


def test_the_notebook_kernel_is_the_ml_runtime_with_the_kubeflow_sdk(
    sandbox, docker_client, tmp_path: Path
) -> None:
    """What a person finds in a cell: the runtime's own torch, KServe and scikit-learn (the
    notebook image is built on the runtime image), and the Kubeflow SDK kfbox itself drives."""
    import importlib.metadata
    from urllib.parse import parse_qs, urlsplit

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from kfbox.engines.jupyter import JupyterClient

    status = json.loads(cli(sandbox, "status", "--json", "--show-token").stdout)
    parts = {c["name"]: c for c in status["components"]}
    login = urlsplit(parts["jupyter"]["url"])
    client = JupyterClient(f"{login.scheme}://{login.netloc}", parse_qs(login.query)["token"][0])
    probe = "import importlib.metadata as m, json\nprint(json.dumps({p: m.version(p) for p in %r}))"
    packages = ["torch", "kserve", "scikit-learn", "numpy"]
    notebook = new_notebook(cells=[new_code_cell(probe % [*packages, "kubeflow", "optuna"])])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, tmp_path / "versions.ipynb")
    result = client.execute_notebook(tmp_path / "versions.ipynb", "kfbox-tests/versions",
                                     tmp_path / "out.ipynb", timeout_s=120)
    [cell] = json.loads(result.executed.read_text())["cells"]
    kernel = json.loads("".join(cell["outputs"][0]["text"]))
    runtime = parts["runtime"]["image"].split("@")[0]
    printed = docker_client.containers.run(
        runtime, ["python3", "-c", probe % packages], remove=True,
        labels={LABEL: status["name"]}).decode()
    assert {p: kernel[p] for p in packages} == json.loads(printed)
    assert kernel["kubeflow"] == importlib.metadata.version("kubeflow")
    assert kernel["optuna"]


def test_the_notebook_profile_refuses_a_sandbox_whose_notebook_starts_nothing(
    sandbox, tmp_path: Path
) -> None:
    """On the host's Docker engine the notebook holds no engine: a person cannot train from a
    cell there, and the certificate says so rather than passing by not running."""
    done = cli(sandbox, "certify", "--profile", "notebook", "--out", str(tmp_path))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    _, report = bundle_report(tmp_path)
    assert report["certified"] is False
    assert {r["status"] for r in report["requirements"]} == {"failed"}
    assert all("offers the notebook no engine" in r["reason"] for r in report["requirements"])


def test_the_platform_requirements_hold_on_lite(sandbox, tmp_path: Path) -> None:
    """The full profile's component tests (derived from the engine's declaration) all pass on
    lite; only the GPU journey keeps full from certifying on a host without a GPU."""
    done = cli(sandbox, "certify", "--profile", "full", "--out", str(tmp_path / "full"))
    _, report = bundle_report(tmp_path / "full")
    platform = {r["id"]: r for r in report["requirements"] if r["where"] == "components"}
    assert {r["status"] for r in platform.values()} == {"passed"}, platform
    access = [c["detail"] for c in platform["platform.notebook-access"]["evidence"]]
    assert access[-1].endswith("answers 403 without its token and 200 with it"), access
    assert report["verdicts"]["core"]["certified"] is True
    if not detect_gpus().present:
        assert done.returncode != 0 and report["verdicts"]["gpu"]["certified"] is False


@pytest.mark.parametrize("command", ["test", "certify"])
def test_a_sandbox_that_does_not_exist_fails_in_one_line(
    command: str, tmp_path: Path, docker_client
) -> None:
    done = kfbox_cli("--name", "nosuch", command, "--profile", "quick", "--out", str(tmp_path),
                     env={"KFBOX_HOME": str(tmp_path / "home")})
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr == "error: sandbox 'nosuch' does not exist — run `kfbox up` " \
                          "(with --name nosuch)\n"
    assert done.stdout == "" and not list(tmp_path.glob("kfbox-*"))


@pytest.mark.skipif(detect_gpus().present, reason="this host has a GPU: the gpu journey runs")
def test_gpu_profile_without_a_gpu_skips_and_is_not_certified(sandbox, tmp_path: Path) -> None:
    done = cli(sandbox, "test", "--profile", "gpu", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-2000:]
    [journey] = run_record(run_folder(tmp_path))["journeys"]
    assert {s["status"] for s in journey["steps"]} == {"skipped"}
    assert all("no GPU" in s["reason"] for s in journey["steps"])
    certify = cli(sandbox, "certify", "--profile", "gpu", "--out", str(tmp_path / "bundle"))
    assert certify.returncode != 0  # a skip is never a pass


@pytest.mark.skipif(detect_gpus().present, reason="this host has a GPU: the gpu journey runs")
def test_require_gpu_turns_the_skips_into_failures(sandbox, tmp_path: Path) -> None:
    done = cli(sandbox, "test", "--profile", "gpu", "--require-gpu", "--out", str(tmp_path))
    assert done.returncode == 1
    [journey] = run_record(run_folder(tmp_path))["journeys"]
    assert {s["status"] for s in journey["steps"]} == {"failed"}
