"""A broken scenario run through `kfbox test` on a real lite sandbox (in the host's Docker engine):
the failing step's real cause in one line, every later step blocked by it, diagnostics in the
run's logs/, and no workload or secret left behind; and a person's notebook work, which that
engine cannot offer, failing rather than passing by not running."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from docker.errors import NotFound

from kfbox.engines import get_engine
from kfbox.engines.lite import components as comp
from kfbox.engines.lite.platform import RUN_LABEL
from kfbox.harness.requirements import steps_for
from kfbox.harness.runner import workspace_for
from kfbox.host.config import load_spec
from kfbox.host.docker_engine import LABEL, ROLE_LABEL
from kfbox.scenarios.scenario import SCENARIO_FILE, load_scenario
from tests.support.cli import kfbox_cli, private_home
from tests.support.net import sandbox_ports
from tests.support.sandboxes import (
    ON_HOST_ENGINE,
    labelled,
    remove_labelled,
    run_folder,
    run_record,
    sandbox_name,
    untag_registry,
)
from tests.support.training_code import as_a_job_only

pytestmark = pytest.mark.e2e

PROFILE = VARIANT = "quick"
STEPS = steps_for(VARIANT)
TRAINJOB_LABEL = "trainer.kubeflow.org/trainjob-name"


@dataclass
class Sandbox:
    name: str
    home: Path
    config: Path

    def kfbox(self, *args: str) -> subprocess.CompletedProcess[str]:
        return kfbox_cli(
            "--config", str(self.config), *args, env={"KFBOX_HOME": str(self.home)}, timeout=900
        )

    def token(self) -> str:
        return (self.home / "sandboxes" / self.name / "jupyter-token").read_text().strip()


@pytest.fixture(scope="module")
def sandbox(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """One sandbox of its own (name, free ports, KFBOX_HOME) for the module, removed after."""
    root = tmp_path_factory.mktemp("failures")
    name = sandbox_name("fail")
    config = root / "kfbox.yaml"
    # A spec file rather than --port flags: `kfbox test` must reach the same ports as `up`.
    ports = sandbox_ports()
    config.write_text(yaml.safe_dump({"name": name, "ports": ports, **ON_HOST_ENGINE}))
    box = Sandbox(name, private_home(root / "home"), config)
    try:
        up = box.kfbox("up")
        assert up.returncode == 0, up.stderr
        yield box
        down = box.kfbox("down")
        assert down.returncode == 0, down.stderr
        assert labelled(docker_client, name) == []
    finally:
        remove_labelled(docker_client, name)
        untag_registry(docker_client, ports["registry"])


# ---- one thing broken per scenario copy ------------------------------------------------------


def edit_notebook(folder: Path, edit: Callable[[list[dict[str, Any]]], None]) -> None:
    path = folder / load_scenario(folder).notebook
    notebook = json.loads(path.read_text())
    edit(notebook["cells"])
    path.write_text(json.dumps(notebook, indent=1))


def cell_raises(folder: Path) -> str:
    """The second code cell divides by zero."""

    def edit(cells: list[dict[str, Any]]) -> None:
        [_, second, *_] = [c for c in cells if c["cell_type"] == "code"]
        second["source"] = ["print(1 / 0)\n"]

    edit_notebook(folder, edit)
    return "ZeroDivisionError: division by zero"


def training_exits_non_zero(folder: Path) -> str:
    """The %%writefile train.py cell's code exits with a message instead of training, as a
    training job only (torchrun sets WORLD_SIZE): the notebook's own prototype of it, in the
    kernel, still trains, so the failure is the platform's train step's to report."""
    entry = Path(load_scenario(folder).train.command[-1]).name

    def edit(cells: list[dict[str, Any]]) -> None:
        [cell] = [c for c in cells if "".join(c["source"]).startswith(f"%%writefile {entry}\n")]
        cell["source"] = as_a_job_only("".join(cell["source"]),
                                       'raise SystemExit("boom: bad data")')

    edit_notebook(folder, edit)
    return "boom: bad data"


def build_fails(folder: Path) -> str:
    """The Dockerfile gains a RUN that imports a module the runtime does not have."""
    dockerfile = folder / load_scenario(folder).dockerfile
    dockerfile.write_text(dockerfile.read_text() + 'RUN python -c "import libdigits"\n')
    return "ModuleNotFoundError: No module named 'libdigits'"


def search_parameter_unknown_to_training(folder: Path) -> str:
    """The search's first parameter is renamed to one the training script does not accept:
    the train step passes, every trial fails."""
    path = folder / SCENARIO_FILE
    raw = yaml.safe_load(path.read_text())
    parameter = raw["tune"]["parameters"][0]
    parameter["name"] = f"{parameter['name']}_typo"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return f"unrecognized arguments: --{parameter['name']}="


def model_will_not_load(folder: Path) -> str:
    """The model server's load() raises before reading the weights."""
    model = folder / load_scenario(folder).serve.command[-1].rsplit("/", 1)[-1]
    source = model.read_text()
    marker = "    def load(self) -> bool:\n"
    assert source.count(marker) == 1, "the model server no longer has one load() method"
    broken = marker + '        raise RuntimeError("corrupt weights in model.pt")\n'
    model.write_text(source.replace(marker, broken))
    return "RuntimeError: corrupt weights in model.pt"


# ---- what a failed run must leave, and must not ----------------------------------------------


def leftovers(client: docker.DockerClient, sandbox: str, journeys: list[str]) -> list[str]:
    """Containers and networks of the sandbox beyond its components and network, and any
    training job container named after one of the run's journeys."""
    filters = {"label": [f"{LABEL}={sandbox}"]}
    left = [
        f"container {c.name}"
        for c in client.containers.list(ignore_removed=True, all=True, filters=filters)
        if c.labels.get(ROLE_LABEL) != "component"
    ]
    left += [
        f"network {n.name}"
        for n in client.networks.list(filters=filters)
        if n.name != comp.network_name(sandbox)
    ]
    left += [
        f"container {c.name}"
        for c in client.containers.list(
            ignore_removed=True, all=True, filters={"label": [TRAINJOB_LABEL]})
        if c.labels[TRAINJOB_LABEL].startswith(tuple(journeys))
    ]
    return left


def notebook_errors(executed: Path) -> list[str]:
    cells = json.loads(executed.read_text())["cells"]
    return [
        f"{output['ename']}: {output['evalue']}"
        for cell in cells
        for output in cell.get("outputs", [])
        if output["output_type"] == "error"
    ]


@pytest.mark.parametrize(
    ("breaks", "step"),
    [
        (cell_raises, "notebook"),
        (build_fails, "build"),
        (training_exits_non_zero, "train"),
        (search_parameter_unknown_to_training, "tune"),
        (model_will_not_load, "serve"),
    ],
    ids=[
        "notebook-cell-raises",
        "build-run-fails",
        "train-exits-1",
        "every-trial-fails",
        "model-will-not-load",
    ],
)
def test_failed_step_names_its_cause_and_blocks_the_rest(
    sandbox: Sandbox,
    docker_client: docker.DockerClient,
    digits_copy: Path,
    tmp_path: Path,
    breaks: Callable[[Path], str],
    step: str,
) -> None:
    cause = breaks(digits_copy)
    out = tmp_path / "out"
    done = sandbox.kfbox(
        "test", "--profile", PROFILE, "--scenario", str(digits_copy), "--out", str(out)
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    run = run_folder(out)

    # The failing step: failed, with the real cause on one line; earlier ones passed, later
    # ones blocked by it rather than failing on their own.
    [journey] = run_record(run)["journeys"]
    steps = {s["name"]: s for s in journey["steps"]}
    assert list(steps) == list(STEPS)
    failed_at = STEPS.index(step)
    assert [steps[s]["status"] for s in STEPS[:failed_at]] == ["passed"] * failed_at
    assert steps[step]["status"] == "failed"
    assert cause in steps[step]["reason"] and "\n" not in steps[step]["reason"]
    for later in STEPS[failed_at + 1 :]:
        assert (steps[later]["status"], steps[later]["reason"]) == (
            "blocked",
            f"blocked by step '{step}'",
        )

    # Diagnostics: the step's own log, every component's logs and inspect output, the executed
    # notebook (with the traceback when a cell raised), the model server's logs when it died.
    logs = run / "logs"
    assert cause in (logs / f"{VARIANT}-{step}.log").read_text()
    inputs = json.loads((logs / f"{VARIANT}-{step}.inputs.json").read_text())
    assert inputs["variant"] == VARIANT
    assert (inputs["image"] is None) == (step in ("notebook", "build"))
    for component in ("jupyter", "registry"):
        container = f"{comp.prefix(sandbox.name)}-{component}"
        assert (logs / "containers" / f"{container}.log").is_file()
        assert json.loads((logs / "containers" / f"{container}.inspect.json").read_text())["Id"]
    [executed] = (logs / "notebooks").glob("*.executed.ipynb")
    assert notebook_errors(executed) == ([cause] if step == "notebook" else [])
    if step == "serve":
        served = list((logs / "containers").glob("*-serve-model.log"))
        assert served and cause in served[0].read_text()
        assert served[0].with_suffix(".inspect.json").is_file()
        assert cause in (logs / VARIANT / "serve.log").read_text()

    # Nothing of the run is left in the engine, and the notebook token is in no file.
    journeys = [p.name for p in workspace_for(run).glob(f"{VARIANT}-*")]
    assert journeys, "no journey folder in the run's workspace"
    assert leftovers(docker_client, sandbox.name, journeys) == []
    token = sandbox.token()
    files = [*run.rglob("*"), *workspace_for(run).rglob("*")]
    leaked = [p for p in files if p.is_file() and token.encode() in p.read_bytes()]
    assert not leaked, leaked


def test_a_run_collects_and_removes_only_its_own_workloads(
    sandbox: Sandbox,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two runs of one sandbox at once (their folders named alike, as every run's are): each
    run's diagnostics and clean-up see only its own workloads."""
    monkeypatch.setenv("KFBOX_HOME", str(sandbox.home))
    engine = get_engine(load_spec(sandbox.config))
    mine, theirs = (engine.platform(tmp_path / run / "workspace") for run in ("a", "b"))
    assert mine.run_id != theirs.run_id
    labels = {LABEL: sandbox.name, ROLE_LABEL: "workload", RUN_LABEL: mine.run_id}
    workload = docker_client.containers.create(mine.runtime_image, command=["true"], labels=labels)
    try:
        theirs.collect_diagnostics(tmp_path / "theirs")
        assert not list((tmp_path / "theirs").glob(f"{workload.name}.*"))
        theirs.close()
        workload.reload()  # still there: raises NotFound if the other run removed it
        mine.collect_diagnostics(tmp_path / "mine")
        assert (tmp_path / "mine" / f"{workload.name}.inspect.json").is_file()
        mine.close()
        assert workload.id not in {c.id for c in docker_client.containers.list(
            ignore_removed=True, all=True)}
    finally:
        with contextlib.suppress(NotFound):  # removed by the run, as it should be
            workload.remove(force=True)


def test_two_runs_building_the_same_files_make_one_image(
    sandbox: Sandbox, docker_client: docker.DockerClient, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second run's build of unchanged files is the builder's cache, not a new image: the
    image carries the sandbox's labels (so clean-up finds it), never the run's, which would be
    a step rebuilt on every run."""
    monkeypatch.setenv("KFBOX_HOME", str(sandbox.home))
    engine = get_engine(load_spec(sandbox.config))
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
                                        "COPY model.txt /app/\n")
    (context / "model.txt").write_text("the same file in both runs\n")
    built, runs = [], []
    for run in ("a", "b"):
        platform = engine.platform(tmp_path / run / "workspace")
        try:
            built.append(platform.images.build(
                context, "kfbox/same-files", build_args={"BASE_IMAGE": platform.runtime_image}))
            runs.append(platform.run_id)
        finally:
            platform.close()
    first, second = built
    assert first.digest == second.digest
    image = docker_client.images.get(first.reference)
    assert {tag.rsplit(":", 1)[1] for tag in image.tags} >= set(runs)  # each run tagged it
    assert image.labels[LABEL] == sandbox.name and RUN_LABEL not in image.labels


def test_a_persons_notebook_work_fails_on_the_hosts_docker_engine(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """On the host's Docker engine the notebook holds no engine: a person cannot train from a
    cell there, and the certificate says so rather than passing by not running."""
    done = sandbox.kfbox("certify", "--profile", "notebook", "--out", str(tmp_path))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((run_folder(tmp_path) / "report.json").read_text())
    assert report["certified"] is False
    assert {r["status"] for r in report["requirements"]} == {"failed"}
    assert all("offers the notebook no engine" in r["reason"] for r in report["requirements"])
