"""The default lite sandbox, end to end, in the rootless Docker engine of its own that `up`
makes: the core profile certified for every shipped scenario (the journey, then a person's work
from the notebook: the tutorials in its kernel), re-read with `kfbox results`; the full profile's
platform requirements; the GPU profile on a host without a GPU; a model served from a cell and
queried from the notebook and the host; every escape of the table attempted from the notebook's
own kernel; and `down` taking the engine and its user away."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import secrets
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from nbformat.v4 import new_code_cell

from kfbox.engines import get_engine
from kfbox.engines.jupyter import JupyterClient
from kfbox.engines.lite.rootless import ENGINE_SOCKET, notebook_home
from kfbox.engines.platform import PipelineRun, StepFailure, TrackedRun
from kfbox.harness.pipeline import compile_journey
from kfbox.harness.profiles import Profile
from kfbox.harness.requirements import COMPONENTS, REQUIREMENTS, STEPS
from kfbox.harness.runner import run_suite
from kfbox.host.config import load_spec
from kfbox.host.docker_engine import LABEL, RUN_LABEL
from kfbox.host.gpu import detect_gpus
from kfbox.host.images.base import ensure_base_image
from kfbox.host.progress import quiet_reporter
from kfbox.host.rootless_docker import RootlessDocker, find_rootless_docker
from kfbox.scenarios.scenario import list_scenarios, load_scenario
from tests.support import escapes
from tests.support.browser import open_page
from tests.support.cli import kfbox_cli, private_home
from tests.support.escape_table import ATTEMPTS, attempt_spec, judge
from tests.support.notebooks import write_notebook
from tests.support.pipelines import own_pipeline
from tests.support.sandboxes import (
    free_ports_args,
    labelled,
    run_folder,
    run_record,
    sandbox_name,
)

pytestmark = pytest.mark.e2e
RUN = secrets.token_hex(3)
CERTIFIED: dict[str, Path] = {}
"""Each scenario's results bundle, as the core certification above left it."""
TUTORIALS = Path(__file__).resolve().parents[2] / "kfbox" / "engines" / "lite" / "tutorials"


class Sandbox:
    """The module's sandbox, as `up` makes it by default: its name and private KFBOX_HOME."""

    def __init__(self, name: str, home: Path) -> None:
        self.name, self.home = name, home
        self.up_output = ""

    def cli(self, *args: str):
        return kfbox_cli("--name", self.name, *args, env={"KFBOX_HOME": str(self.home)})

    @property
    def engine(self) -> RootlessDocker:
        engine = find_rootless_docker(self.name)
        assert engine is not None, f"sandbox {self.name} has no rootless Docker engine"
        return engine

    def jupyter_login(self) -> tuple[str, str]:
        """(the notebook server's base URL, its token)."""
        status = json.loads(self.cli("status", "--json", "--show-token").stdout)
        url = urlsplit(next(c["url"] for c in status["components"] if c["name"] == "jupyter"))
        return f"{url.scheme}://{url.netloc}", parse_qs(url.query)["token"][0]

    def jupyter(self) -> JupyterClient:
        return JupyterClient(*self.jupyter_login())


@pytest.fixture(scope="module")
def sandbox(docker_client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    made = Sandbox(sandbox_name("journey"), private_home(tmp_path_factory.mktemp("j") / "home"))
    try:
        up = made.cli("up", *free_ports_args())
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        made.up_output = up.stdout + up.stderr
        yield made
    finally:
        down = made.cli("down")
        assert down.returncode == 0, down.stderr[-2000:]
        assert find_rootless_docker(made.name) is None
        assert labelled(docker_client, made.name) == []


def bundle_report(out: Path) -> tuple[Path, dict]:
    folder = run_folder(out)
    return folder, json.loads((folder / "report.json").read_text())


def logs_of(folder: Path) -> Path:
    """The core journey's workload logs in a results bundle."""
    return folder / "logs" / "core"


def execute(sandbox: Sandbox, notebook: Path, tmp_path: Path, folder: str) -> list[dict]:
    """Run `notebook` in the sandbox's own kernel; the executed cells."""
    result = sandbox.jupyter().execute_notebook(notebook, folder, tmp_path / "executed.ipynb",
                                                timeout_s=600)
    return json.loads(result.executed.read_text())["cells"]


def printed(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))


def test_the_sandbox_runs_in_its_own_rootless_engine(sandbox: Sandbox, docker_client) -> None:
    engine = sandbox.engine
    names = {c.name for c in engine.client().containers.list()}
    assert {f"kfbox-{sandbox.name}-jupyter", f"kfbox-{sandbox.name}-registry"} <= names
    assert labelled(docker_client, sandbox.name) == []  # nothing on the host's engine
    status = json.loads(sandbox.cli("status", "--json").stdout)
    assert status["state"] == "running" and status["facts"]["docker"] == "rootless"
    # Its new registry came from the host's cache of the runtime's compressed layers, and its
    # engine was told which blob each layer is: the seed's push sent none of them.
    assert "Registry storage from the host's cache" in sandbox.up_output
    assert re.search(r"the ML runtime's layers: 0 sent, [1-9]\d* already there",
                     sandbox.up_output), sandbox.up_output[-3000:]
    # `up` offered the tutorials in the notebook server, where a person finds them.
    url, token = sandbox.jupyter_login()
    listing = requests.get(f"{url}/api/contents/tutorials", timeout=30,
                           headers={"Authorization": f"token {token}"}).json()
    assert {c["name"] for c in listing["content"]} == {p.name for p in TUTORIALS.glob("*.ipynb")}


@pytest.mark.parametrize("name", list_scenarios())
def test_core_profile_certifies_each_scenario_with_every_step_measured(
    sandbox: Sandbox, docker_client, tmp_path: Path, name: str
) -> None:
    scenario = load_scenario(name)
    done = sandbox.cli("certify", "--profile", "core", "--scenario", name, "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder, report = bundle_report(tmp_path)
    assert report["certified"] is True and report["profile"] == "core"
    assert report["configuration"] | {"sandbox": ""} == {
        "engine": "lite", "sandbox": "", "profile": "core", "scenario": name, "gpus": 0,
        "source": "online", "bundle": "", "listen": "127.0.0.1"}
    # The certificate names the software it certified, read from the images and the host.
    for software in ("python", "torch", "kserve", "kfp", "kubeflow", "optuna", "jupyterlab",
                     "jupyter_server", "mlflow", "docker", "kfbox"):
        assert report["software"].get(software), software
    # Every requirement passed, with evidence from the test that checked it.
    assert {r["status"] for r in report["requirements"]} == {"passed"}
    assert all(r["evidence"] and r["evidence"][0]["test_id"] for r in report["requirements"])
    group = next(r for r in report["requirements"] if r["id"] == "train.process-group")
    assert group["evidence"][0]["detail"] == f"world_size={scenario.train.nodes} for " \
                                             f"{scenario.train.nodes} node(s)"
    # A person's work from the notebook: the tutorials ran in the sandbox's kernel, each judged.
    evidence = {r["id"]: [e["detail"] for e in r["evidence"]] for r in report["requirements"]}
    assert {i for i in evidence if i.startswith("person.")} == {
        "person.boundary", "person.trains", "person.tunes", "person.builds", "person.serves",
        "person.pipelines"}
    assert "train-from-the-notebook.ipynb: world_size=2 meets world_size >= 2" in \
        evidence["person.trains"]
    # Every job ran, and went, in the sandbox's own engine; nothing in the host's.
    assert [c.name for c in sandbox.engine.client().containers.list(all=True)
            if c.labels.get("kfbox.role") != "component"] == []
    assert labelled(docker_client, sandbox.name) == []
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
    # The journey as one pipeline: the compiled file in the bundle, its digest in the
    # certificate, every task's state and time, the trials in parallel, all on this sandbox.
    compiled = logs_of(folder) / "pipeline" / "pipeline.yaml"
    pipeline = steps["pipeline"]["metrics"]
    assert pipeline["sha256"] == hashlib.sha256(compiled.read_bytes()).hexdigest()
    assert {t["state"] for t in pipeline["tasks"]} == {"SUCCESS"}
    assert all(t["duration_s"] > 0 for t in pipeline["tasks"])
    assert pipeline["artifacts"] and all(re.fullmatch(r"[0-9a-f]{64}", digest)
                                         for digest in pipeline["artifacts"].values())
    outputs = pipeline["task_outputs"]  # each task's outputs, as its executor wrote them
    assert scenario.tune.objective in outputs["train"]["Output"]
    assert len([place for place in outputs if place.endswith("/trial")]) == \
        scenario.tune.max_trials
    assert sorted(t["task"] for t in pipeline["tasks"]) == sorted(
        ["train", "best", "gate", *["trial"] * scenario.tune.max_trials])
    # Every task's image was the one built and already in the engine: nothing was pulled.
    assert "Pulling image" not in (logs_of(folder) / "pipeline" / "run.log").read_text()
    # The plots' data: a training curve per epoch, every trial with the best marked.
    epochs = int(scenario.train.args["epochs"])
    assert journey["curve"]["epoch"] == [float(e) for e in range(1, epochs + 1)]
    assert len(journey["trials"]) == scenario.tune.max_trials
    assert sum(t["best"] for t in journey["trials"]) == 1
    # The bundle: folder and tarball, every workload's log, no workspace, no token anywhere.
    assert (folder / "junit.xml").is_file() and (folder / "report.html").is_file()
    assert list((folder / "logs").rglob("*.executed.ipynb"))
    logs = logs_of(folder)
    assert "world_size=" in (logs / "train.log").read_text()
    assert len(list((logs / "tune").glob("*.log"))) == scenario.tune.max_trials
    assert "ready" in (logs / "serve.log").read_text().lower()
    assert not (folder / "workspace").exists(), "the run's own files stay out of the bundle"
    assert sorted(p.name for p in folder.iterdir()) == ["junit.xml", "logs", "report.html",
                                                        "report.json"]
    with tarfile.open(f"{folder}.tar.gz") as archive:
        assert any(n.endswith("report.json") for n in archive.getnames())
    token = (sandbox.home / "sandboxes" / sandbox.name / "jupyter-token").read_text().strip()
    leaked = [p for p in folder.rglob("*") if p.is_file() and token in p.read_text(errors="ignore")]
    assert not leaked, leaked
    reread = kfbox_cli("results", f"{folder}.tar.gz")
    assert reread.returncode == 0 and "certified" in reread.stdout.lower()
    # Tracked: the training job, the study and its trials; the served model a registered
    # version; its lineage in the certificate (test_the_tracking_server_... reads the server).
    track = steps["track"]["metrics"]
    assert track["runs"] == scenario.tune.max_trials + 2 and track["alias"] == "champion"
    lineage = steps["serve"]["metrics"]["lineage"]
    assert lineage["image"]["digest"] == steps["build"]["metrics"]["digest"]
    assert lineage["model_version"]["version"] == track["model_version"]
    assert lineage["endpoint"]["model_version"] == track["model_version"]
    assert lineage["run"]["id"] != track["train_run"]  # the best trial's run, not the train job
    password = (sandbox.home / "sandboxes" / sandbox.name / "tracking-password").read_text()
    leaked = [p for p in folder.rglob("*") if p.is_file()
              and password.strip() in p.read_text(errors="ignore")]
    assert not leaked, leaked
    # The served model trained again from the certificate's lineage: the same metrics.
    again = sandbox.cli("reproduce", str(folder), "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert again.stdout.splitlines()[-1].startswith("reproduced in ")
    assert f"run {lineage['run']['id']}: {lineage['image']['reference']}" in again.stdout
    CERTIFIED[name] = folder


def test_the_notebook_kernel_is_the_ml_runtime_with_the_kubeflow_sdk(
    sandbox: Sandbox, docker_client, tmp_path: Path
) -> None:
    """What a person finds in a cell: the runtime's own torch, KServe and scikit-learn (the
    notebook image is built on the runtime image), and the Kubeflow SDK kfbox itself drives."""
    import importlib.metadata

    status = json.loads(sandbox.cli("status", "--json").stdout)
    parts = {c["name"]: c for c in status["components"]}
    client = sandbox.jupyter()
    probe = "import importlib.metadata as m, json\nprint(json.dumps({p: m.version(p) for p in %r}))"
    packages = ["torch", "kserve", "kfp", "scikit-learn", "numpy"]
    write_notebook(tmp_path / "versions.ipynb", probe % [*packages, "kubeflow", "optuna"])
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


def test_the_platform_requirements_hold_on_lite(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full profile's component tests (derived from the engine's declaration) all pass on
    the default sandbox. Run alone: the full profile adds only journeys certified above and the
    GPU journey (tests/harness/test_verdict.py judges how its verdict is made of theirs)."""
    monkeypatch.setenv("KFBOX_HOME", str(sandbox.home))
    outcome = run_suite(Profile("components", "the platform's own", (), components=True),
                        tmp_path / "run", load_spec(None, {"name": sandbox.name}))
    assert outcome.pytest_exit_code == 0
    assert outcome.record is not None
    checks = {c.requirement: c for c in outcome.record.checks}  # each one's last check
    assert set(checks) == {r.id for r in REQUIREMENTS.values() if r.where == COMPONENTS}
    assert all(c.passed for c in outcome.record.checks), outcome.record.checks
    notebook = checks["platform.notebook-access"].detail
    assert notebook.endswith("answers 403 without its token and 200 with it"), notebook


def tracking_login(sandbox: Sandbox) -> tuple[str, dict[str, str]]:
    """(the tracking server's base URL, its basic-auth header), as `status --show-token` says."""
    status = json.loads(sandbox.cli("status", "--json", "--show-token").stdout)
    url = urlsplit(next(c["url"] for c in status["components"] if c["name"] == "tracking"))
    assert url.username == "kfbox" and url.password
    pair = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
    return f"{url.scheme}://{url.hostname}:{url.port}", {"Authorization": f"Basic {pair}"}


# What a person sees of the UI's run list: every row's text.
RUN_LIST_JS = "document.body ? document.body.innerText : ''"


def test_the_tracking_server_shows_every_run_behind_its_login(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runs the certification recorded, read with MLflow's own client and seen in its UI
    (headless Chromium, logged in as `status --show-token` says); nothing without the login."""
    assert CERTIFIED, "the core certification above ran first"
    base, auth = tracking_login(sandbox)
    for path in ("/", "/api/2.0/mlflow/experiments/search?max_results=1"):
        assert requests.get(f"{base}{path}", timeout=10).status_code == 401
        wrong = {"Authorization": "Basic " + base64.b64encode(b"kfbox:guess").decode()}
        assert requests.get(f"{base}{path}", headers=wrong, timeout=10).status_code == 401
        assert requests.get(f"{base}{path}", headers=auth, timeout=10).status_code == 200
    report = json.loads((CERTIFIED["digits"] / "report.json").read_text())
    steps = {s["name"]: s for s in report["journeys"][0]["steps"]}
    lineage = steps["serve"]["metrics"]["lineage"]
    user, password = base64.b64decode(auth["Authorization"].split()[1]).decode().split(":")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=base, registry_uri=base)
    experiment = client.get_experiment_by_name("digits")
    names = {r.info.run_name for r in client.search_runs([experiment.experiment_id],
                                                         max_results=1000)}
    trial = client.get_run(lineage["run"]["id"])
    assert trial.info.run_name in names and trial.data.params == lineage["run"]["parameters"]
    assert trial.data.tags["kfbox.image_digest"] == lineage["image"]["digest"]
    assert trial.data.tags["mlflow.parentRunId"] == steps["track"]["metrics"]["study_run"]
    history = client.get_metric_history(steps["track"]["metrics"]["train_run"], "accuracy")
    assert len(history) == int(load_scenario("digits").train.args["epochs"])
    version = client.get_model_version_by_alias("digits", "champion")
    assert version.run_id == trial.info.run_id or int(version.version) > int(
        lineage["model_version"]["version"])  # the diabetes journey registers its own model
    with open_page(tmp_path) as page:
        page.send("Network.enable")
        page.send("Network.setExtraHTTPHeaders", headers=auth)
        page.send("Page.enable")
        page.send("Page.navigate",
                  url=f"{base}/#/experiments/{experiment.experiment_id}/runs")
        page.wait_for("Page.loadEventFired")
        # The list shows each journey's training job and its study (the trials fold under it).
        shown = [client.get_run(steps["track"]["metrics"][key]).info.run_name
                 for key in ("train_run", "study_run")]
        deadline, seen = time.monotonic() + 60, ""
        while not all(n in seen for n in shown) and time.monotonic() < deadline:
            time.sleep(1)
            seen = page.send("Runtime.evaluate", expression=RUN_LIST_JS,
                             returnByValue=True)["result"]["value"]
        shot = base64.b64decode(page.send("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "runs.png").write_bytes(shot)
    assert all(n in seen for n in shown), seen[:2000]
    assert shot.startswith(b"\x89PNG") and len(shot) > 20_000


def test_the_tracking_server_is_its_web_server_alone(sandbox: Sandbox) -> None:
    """One process in the tracking server's container: uvicorn, exec'd in place of MLflow's
    CLI (kfbox-tracking-server), with no job runner beside it; so nothing it started can
    outlive the container."""
    container = sandbox.engine.client().containers.get(f"kfbox-{sandbox.name}-tracking")
    # /proc as the container sees it (`docker top` needs cgroup paths rootless lacks), less
    # the asking process itself.
    code, out = container.exec_run(["python3", "-c", PROCESSES])
    processes = json.loads(out)
    assert code == 0 and len(processes) == 1, processes
    assert "uvicorn" in processes[0], processes


PROCESSES = """
import json, os
print(json.dumps([open(f"/proc/{p}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
                  for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]))
"""


LOG_FROM_A_CELL = """
import mlflow
mlflow.set_experiment("from-a-cell")
with mlflow.start_run(run_name="cell") as run:
    mlflow.log_param("lr", "0.1")
    for step, value in enumerate([0.5, 0.7, 0.9]):
        mlflow.log_metric("accuracy", value, step=step)
print(f"run={run.info.run_id}")
"""


def test_a_cell_logs_to_the_sandboxs_tracking_server(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's environment names the tracking server and its login: `import mlflow` in a
    cell logs there, and the host reads the run back."""
    write_notebook(tmp_path / "log.ipynb", LOG_FROM_A_CELL)
    [cell] = execute(sandbox, tmp_path / "log.ipynb", tmp_path, "kfbox-tests/log")
    run_id = printed(cell).split("run=")[1].split()[0]
    base, auth = tracking_login(sandbox)
    got = requests.get(f"{base}/api/2.0/mlflow/metrics/get-history",
                       params={"run_id": run_id, "metric_key": "accuracy"}, headers=auth,
                       timeout=10)
    assert [m["value"] for m in got.json()["metrics"]] == [0.5, 0.7, 0.9]


def test_a_stopped_tracking_server_is_named_with_the_fix(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped under a journey, the track step's first request fails naming the server and
    `kfbox up`; stopped before one, `kfbox test` refuses to start; `kfbox up` repairs it."""
    monkeypatch.setenv("KFBOX_HOME", str(sandbox.home))
    engine = get_engine(load_spec(None, {"name": sandbox.name}))
    platform = engine.platform(tmp_path / "run")
    tracking = sandbox.engine.client().containers.get(f"kfbox-{sandbox.name}-tracking")
    tracking.stop(timeout=10)
    try:
        with pytest.raises(StepFailure, match=r"^the tracking server at http://127\.0\.0\.1:\d+ "
                                              r"could not .*; run `kfbox up` to start it again"):
            platform.tracking.record(TrackedRun("digits", "orphan", {}, {}))
        refused = sandbox.cli("test", "--profile", "quick", "--out", str(tmp_path))
        assert refused.returncode == 3
        assert refused.stderr.startswith(f"error: sandbox {sandbox.name!r} is degraded "
                                         "(tracking unhealthy)")
    finally:
        platform.close()
        repaired = sandbox.cli("up")
    assert repaired.returncode == 0, repaired.stderr[-2000:]
    assert sandbox.cli("status").returncode == 0


PROBE_PIPELINE = '''
from kfp import dsl


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def reach_out() -> str:
    import socket

    try:
        socket.create_connection(("pypi.org", 443), timeout=5)
    except OSError as exc:
        return f"refused: {exc}"
    return "reached"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def fail_fast(said: str):
    raise RuntimeError(f"failing on purpose after {said}")


@dsl.pipeline(name="probe")
def probe(fail: bool = FAIL):
    said = reach_out()
    with dsl.If(fail == True):  # noqa: E712 (KFP's condition syntax)
        fail_fast(said=said.output)
'''


@pytest.mark.parametrize("fail", [False, True], ids=["no-network", "fails-fast"])
def test_pipeline_tasks_reach_no_network_and_a_task_that_fails_fast_fails_its_run(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: bool
) -> None:
    """A pipeline task is a workload of the sandbox with no network: nothing it does reaches an
    index or a registry. A task that fails within a second fails the run, naming the task and
    what it raised (kfp 2.17.3 reports it as a success: kubeflow/pipelines#13332)."""
    from kfp import compiler

    monkeypatch.setenv("KFBOX_HOME", str(sandbox.home))
    platform = get_engine(load_spec(None, {"name": sandbox.name})).platform(tmp_path / "run")
    try:
        # A file of its own: KFP reads a component's source with `inspect`.
        source = tmp_path / "probe.py"
        source.write_text(PROBE_PIPELINE.replace("IMAGE", repr(platform.runtime_image))
                          .replace("FAIL", repr(fail)))
        spec = importlib.util.spec_from_file_location(f"probe_{fail}", source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        compiler.Compiler().compile(module.probe, str(tmp_path / "probe.yaml"))
        result = platform.pipelines.run(PipelineRun("probe", tmp_path / "probe.yaml",
                                                    f"{platform.run_id}/probe", timeout_s=300))
        states = {t.name: t.state for t in result.tasks}
        assert states["reach-out"] == "SUCCESS"
        assert "refused: [Errno" in result.logs and "Output: 'reached'" not in result.logs
        if fail:
            assert not result.succeeded and states["fail-fast"] == "FAILURE"
            assert result.error.startswith("task fail-fast failed: RuntimeError: failing on "
                                           "purpose after refused: [Errno"), result.error
        else:
            assert result.succeeded and result.error == "", result.logs[-2000:]
    finally:
        platform.close()
    leftover = sandbox.engine.client().containers.list(
        all=True, filters={"label": f"{RUN_LABEL}={platform.run_id}"})
    assert leftover == []


def test_a_scenarios_own_pipeline_runs_on_the_sandbox(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scenario's own pipeline.py, compiled as the pipeline step compiles it (its
    journey_pipeline called with the image), runs for real: its task's model lands in the model
    store and its `picked` output comes back."""
    monkeypatch.setenv("KFBOX_HOME", str(sandbox.home))
    platform = get_engine(load_spec(None, {"name": sandbox.name})).platform(tmp_path / "run")
    try:
        scenario = load_scenario(own_pipeline(tmp_path))
        compiled = compile_journey(scenario, platform.runtime_image, tmp_path / "own.yaml")
        result = platform.pipelines.run(PipelineRun("own", compiled.path,
                                                    f"{platform.run_id}/own", timeout_s=300))
        assert result.succeeded, result.logs[-2000:]
        assert [(t.name, t.state) for t in result.tasks] == [("train", "SUCCESS")]
        assert json.loads(result.outputs["picked"])["metrics"] == {"accuracy": 0.97}
        model = result.outputs["model"]
        assert model.startswith(f"{platform.run_id}/own/")
        assert platform.artifacts.list(model) == [model]  # one file: what the task wrote
        assert platform.artifacts.fetch(model, tmp_path / "model").read_text() == "weights"
    finally:
        platform.close()


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
    done = sandbox.cli("test", "--profile", "gpu", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-2000:]
    [journey] = run_record(run_folder(tmp_path))["journeys"]
    assert {s["status"] for s in journey["steps"]} == {"skipped"}
    assert all("no GPU" in s["reason"] for s in journey["steps"])
    certify = sandbox.cli("certify", "--profile", "gpu", "--out", str(tmp_path / "bundle"))
    assert certify.returncode != 0  # a skip is never a pass


@pytest.mark.skipif(detect_gpus().present, reason="this host has a GPU: the gpu journey runs")
def test_require_gpu_turns_the_skips_into_failures(sandbox, tmp_path: Path) -> None:
    done = sandbox.cli("test", "--profile", "gpu", "--require-gpu", "--out", str(tmp_path))
    assert done.returncode == 1
    [journey] = run_record(run_folder(tmp_path))["journeys"]
    assert {s["status"] for s in journey["steps"]} == {"failed"}


def test_a_cell_serves_a_model_queried_from_the_notebook_and_the_host(
    sandbox: Sandbox, tmp_path
) -> None:
    tutorial = json.loads((TUTORIALS / "serve-from-the-notebook.ipynb").read_text())
    undeploy = tutorial["cells"][-1]
    tutorial["cells"] = tutorial["cells"][:-1]  # keep it deployed, to query from the host
    (tmp_path / "serve.ipynb").write_text(json.dumps(tutorial))
    cells = execute(sandbox, tmp_path / "serve.ipynb", tmp_path, "tutorials")
    output = "\n".join(printed(c) for c in cells)
    answers = {k: v for k, v in re.findall(r"^(v1|v2|expected): (\[.*\])$", output, re.M)}
    assert answers["v1"] == answers["v2"] == answers["expected"], output[-2000:]
    url = re.search(r"from the host: (\S+)", output).group(1)
    assert url.startswith("http://127.0.0.1:")
    from_host = requests.post(url, json={"instances": [[0.0] * 64]}, timeout=30)
    assert from_host.ok and len(from_host.json()["predictions"]) == 1
    status = json.loads(sandbox.cli("status", "--json").stdout)
    assert "digits-server" in {w["name"] for w in status["workloads"]}
    # The tutorial's last cell undeploys it (in a new kernel: first find the server again).
    find = new_code_cell("import docker\nengine = docker.from_env()\n"
                         "container = engine.containers.get('digits-server')")
    (tmp_path / "undeploy.ipynb").write_text(json.dumps({**tutorial, "cells": [find, undeploy]}))
    cells = execute(sandbox, tmp_path / "undeploy.ipynb", tmp_path, "tutorials")
    assert "servers left: []" in printed(cells[-1])


@pytest.fixture(scope="module")
def kernel_attempts(sandbox: Sandbox, docker_client, canary, marker,
                    tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, str, int]]:
    """Every attempt of the escape table, made from the notebook's own kernel through the socket
    it holds, in one notebook (one kernel): name → (result, token, canary count before)."""
    image = ensure_base_image(quiet_reporter(), docker_client)  # copied in at `up`
    labels = {"kfbox.test": RUN}
    specs = {name: attempt_spec(name, RUN, image, labels, canary, marker)
             for name, *_ in ATTEMPTS}
    setup = (f"import json, os\nos.environ['KFBOX_PROBE'] = {escapes.source()!r}\n"
             "ns = {'__name__': 'escapes'}\n"
             "exec(compile(os.environ['KFBOX_PROBE'], 'escapes.py', 'exec'), ns)\n"
             "print(json.dumps({'docker_host': os.environ.get('DOCKER_HOST'), "
             "'host_socket': os.path.exists('/var/run/docker.sock'), "
             "'uid_map': open('/proc/self/uid_map').read().split()}))")
    folder = tmp_path_factory.mktemp("escapes")
    write_notebook(folder / "escapes.ipynb", setup,
                   *(f"print(json.dumps(ns['attempt']({spec!r})))" for spec, _ in specs.values()))
    before = canary.accepted
    executed = execute(sandbox, folder / "escapes.ipynb", folder, "kfbox-escapes")
    kernel = json.loads(printed(executed[0]).strip())
    results = {"kernel": (kernel, "", before)}
    for (name, (_, token)), cell in zip(specs.items(), executed[1:], strict=True):
        results[name] = (json.loads(printed(cell).strip().splitlines()[-1]), token, before)
    return results


def test_the_notebook_holds_only_its_sandboxs_engine(sandbox: Sandbox, kernel_attempts) -> None:
    kernel, _, _ = kernel_attempts["kernel"]
    assert kernel["docker_host"] == f"unix://{ENGINE_SOCKET}"
    assert kernel["host_socket"] is False
    # The kernel's root is the engine's user on the host, never the host's root.
    assert kernel["uid_map"][:3] == ["0", str(sandbox.engine.uid), "1"]
    assert str(notebook_home(sandbox.engine)).startswith(str(sandbox.engine.home))


@pytest.mark.parametrize("name", [a[0] for a in ATTEMPTS])
def test_each_escape_from_the_kernel_is_refused_or_confined(
    sandbox: Sandbox, kernel_attempts, canary, name: str
) -> None:
    result, token, before = kernel_attempts[name]
    outcome, escaped = judge(result, sandbox.engine.uid, token, canary, before)
    print(f"\n{name}: {outcome}")
    assert not escaped, f"{name} escaped: {escaped} ({outcome})"
    leftover = sandbox.engine.client().containers.list(all=True,
                                                       filters={"label": f"kfbox.test={RUN}"})
    assert leftover == []
