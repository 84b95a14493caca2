"""Pipelines on the Kubernetes engines against the KFP API double (kfp_double.py, KFP 2.17.0's
contracts): the journey's compiled file, byte for byte, uploaded and run with KFP's own client
through a port-forward to KFP's API Service, watched to its end; its tasks read from the run's
details among KFP's system nodes; a failed task named in one line with where its log is; a
refusal and a timeout each one line. Then the double refusing what the upstream server refuses,
each rule asked over HTTP as a client would."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import fake_kubectl
import pytest
import requests
import upstream
from kfp_double import KfpApiDouble, serve

from kfbox.engines.kubernetes import pipelines
from kfbox.engines.kubernetes.pipelines import KubePipelines, shape_of
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.platform import PipelineRun, StepFailure
from kfbox.harness.pipeline import compile_journey
from kfbox.scenarios.scenario import load_scenario

IMAGE = "127.0.0.1:5000/kfbox/digits@sha256:" + "a" * 64


@pytest.fixture
def kfp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[KfpApiDouble, Tools]]:
    """The double on 127.0.0.1 and a stand-in kubectl whose port-forward lands on it."""
    double = KfpApiDouble()
    monkeypatch.setenv("HOME", str(tmp_path))  # the client reads ~/.config/kfp/context.json
    with serve(double) as port:
        kubectl = fake_kubectl.install(tmp_path, monkeypatch, port)
        yield double, Tools(which={"kubectl": str(kubectl)})


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory):
    scenario = load_scenario("digits").for_variant("core")
    return compile_journey(scenario, IMAGE,
                           tmp_path_factory.mktemp("pipeline") / "pipeline.yaml")


def run_of(compiled, name: str = "journey-1-pipeline", timeout_s: float = 30) -> PipelineRun:
    return PipelineRun(name=name, package=compiled.path, store_key="journey-1/pipeline",
                       timeout_s=timeout_s)


def test_the_journeys_file_runs_on_kfp_through_its_own_client(kfp, compiled, tmp_path) -> None:
    double, tools = kfp
    result = KubePipelines(tools, None, poll_s=0.01).run(run_of(compiled))
    assert result.succeeded and not result.error
    trials = len(compiled.trials)
    assert [t.name for t in result.tasks].count("trial") == trials
    assert sorted({t.name for t in result.tasks}) == ["best", "gate", "train", "trial"]
    assert len(result.tasks) == trials + 3  # no driver, DAG, iteration or executor node
    assert {t.state for t in result.tasks} == {"SUCCESS"}
    assert all(t.duration_s is not None and t.duration_s >= 0 for t in result.tasks)
    # The same compiled file, byte for byte, as one pipeline run in kfbox's experiment.
    assert [hashlib.sha256(u).hexdigest() for u in double.uploads] == [compiled.sha256]
    (run,) = double.runs.values()
    assert run.body["display_name"] == "journey-1-pipeline"
    assert double.experiments[run.body["experiment_id"]]["display_name"] == \
        pipelines.EXPERIMENT
    # Reached through a port-forward to KFP's API Service, the one the lock installs.
    (forward,) = [json.loads(line) for line in (tmp_path / "kubectl.log").read_text()
                  .splitlines()]
    service = upstream.component("pipelines")["api_service"]
    namespace, name = service["name"].split("/")
    assert forward[forward.index("-n") + 1:] == [namespace, f"svc/{name}",
                                                 f":{service['http_port']}"]
    # What KFP 2.17.0's API cannot give back is said, not guessed.
    assert result.outputs == {} and "object store" in result.outputs_missing


def test_a_second_run_reuses_the_experiment(kfp, compiled) -> None:
    double, tools = kfp
    for name in ("journey-1-pipeline", "journey-2-pipeline"):
        assert KubePipelines(tools, None, poll_s=0.01).run(run_of(compiled, name)).succeeded
    assert [e["display_name"] for e in double.experiments.values()] == [pipelines.EXPERIMENT]


def test_a_failed_task_is_one_line_naming_it_and_its_log(kfp, compiled) -> None:
    double, tools = kfp
    double.fail = {"train"}
    result = KubePipelines(tools, None, poll_s=0.01).run(run_of(compiled))
    assert not result.succeeded
    assert result.error.startswith("task train failed; its log: kubectl -n kubeflow logs -l "
                                   "workflows.argoproj.io/workflow=kfbox-digits-")
    assert "\n" not in result.error
    # Argo omits what depends on train (best, then gate): they never ran, so are not listed.
    assert [t.name for t in result.tasks if t.name != "trial"] == ["train"]
    assert next(t for t in result.tasks if t.name == "train").state == "FAILURE"


def test_kfp_refusing_the_upload_is_one_line(kfp, compiled) -> None:
    _, tools = kfp
    KubePipelines(tools, None, poll_s=0.01).run(run_of(compiled))
    with pytest.raises(StepFailure) as refused:
        KubePipelines(tools, None, poll_s=0.01).run(run_of(compiled))
    assert str(refused.value) == ("pipeline journey-1-pipeline: KFP refused it: HTTP 409: "
                                  "Failed to create a pipeline and a pipeline version")


def test_a_run_past_its_time_is_terminated(kfp, compiled) -> None:
    double, tools = kfp
    double.hold = True
    with pytest.raises(StepFailure, match=r"still running after 0\.2 s; KFP run \S+ terminated"):
        KubePipelines(tools, None, poll_s=0.01).run(run_of(compiled, timeout_s=0.2))
    assert list(double.runs) == double.terminated
    assert next(iter(double.runs.values())).state == "CANCELING"


def test_the_pipelines_own_tasks_are_read_from_the_file(compiled) -> None:
    shape = shape_of(compiled.path)
    assert shape.tasks == {"train", "trial", "best", "gate"}
    assert shape.is_workflow("kfbox-digits-7xk2q") and not shape.is_workflow("kfbox-digits")
    assert not shape.is_workflow("iteration-driver")


# ---- the double refuses what KFP 2.17.0 refuses ---------------------------------------------


@pytest.fixture
def api(kfp) -> Iterator[str]:
    double, _ = kfp
    with serve(double) as port:
        yield f"http://127.0.0.1:{port}/apis/v2beta1"


def upload(api: str, text: str, name: str = "p", filename: str = "p.yaml") -> requests.Response:
    return requests.post(f"{api}/pipelines/upload", params={"name": name},
                         files={"uploadfile": (filename, text)}, timeout=10)


def test_the_double_refuses_uploads_as_kfp_does(api, compiled) -> None:
    spec = compiled.path.read_text()
    no_file = requests.post(f"{api}/pipelines/upload", params={"name": "p"},
                            files={"other": ("p.yaml", spec)}, timeout=10)
    assert (no_file.status_code, no_file.json()["error_message"]) == (
        400, "Failed to read pipeline from file")
    assert upload(api, spec, filename="p.txt").json()["error_message"] == \
        "Failed to read a pipeline spec file"
    assert upload(api, "root: {}\n").json()["error_message"] == "unknown template format"
    assert upload(api, spec + "extra: 1\n").json()["error_message"] == "unknown template format"
    old = upload(api, spec.replace("schemaVersion: 2.1.0", "schemaVersion: 2.0.0"))
    assert old.status_code == 400 and "schema version 2.1.0" in old.json()["error_message"]
    upper = upload(api, spec.replace("name: kfbox-digits", "name: Kfbox_Digits"))
    assert upper.status_code == 400 and "lowercase" in upper.json()["error_message"]
    long = upload(api, spec, name="p" * 129)
    assert long.status_code == 400 and "cannot exceed 128" in long.text
    assert upload(api, spec).status_code == 200
    assert upload(api, spec).status_code == 409  # (namespace, name) is unique


def test_the_double_refuses_runs_as_kfp_does(api, compiled) -> None:
    pipeline = upload(api, compiled.path.read_text()).json()
    assert set(pipeline) == {"pipeline_id", "name", "display_name", "created_at"}
    version = requests.get(f"{api}/pipelines/{pipeline['pipeline_id']}/versions",
                           timeout=10).json()["pipeline_versions"][0]
    reference = {"pipeline_id": pipeline["pipeline_id"],
                 "pipeline_version_id": version["pipeline_version_id"]}

    def create(body: dict) -> requests.Response:
        return requests.post(f"{api}/runs", json=body, timeout=10)

    unknown_field = create({"display_name": "r", "pipeline_version_reference": reference,
                            "displayName2": "x"})
    assert unknown_field.status_code == 400 and "details" not in unknown_field.json()
    assert create({"display_name": "r", "pipeline_version_reference": reference,
                   "pipeline_spec": {"x": 1}}).status_code == 400  # a oneof, set twice
    assert create({"pipeline_version_reference": reference}).status_code == 500  # no name
    unknown = create({"display_name": "r", "pipeline_version_reference":
                      {**reference, "pipeline_version_id": "nope"}})
    assert unknown.status_code == 500
    assert unknown.json()["details"][0]["message"] == "Internal Server Error"
    assert create({"display_name": "r", "experiment_id": "nope",
                   "pipeline_version_reference": reference}).status_code == 404
    run = create({"display_name": "r", "pipeline_version_reference": reference}).json()
    assert (run["state"], run["finished_at"]) == ("PENDING", "1970-01-01T00:00:00Z")
    while requests.get(f"{api}/runs/{run['run_id']}", timeout=10).json()["state"] != \
            "SUCCEEDED":
        pass
    done = requests.post(f"{api}/runs/{run['run_id']}:terminate", timeout=10)
    assert done.status_code == 400  # only PENDING, RUNNING or PAUSED runs terminate
    assert requests.get(f"{api}/runs/nope", timeout=10).status_code == 404


def test_the_double_refuses_experiments_as_kfp_does(api) -> None:
    def create(body: dict) -> requests.Response:
        return requests.post(f"{api}/experiments", json=body, timeout=10)

    assert create({"display_name": ""}).status_code == 500
    assert create({"display_name": "e", "namespace": ""}).status_code == 200
    again = create({"display_name": "e"})
    assert again.status_code == 409 and "already exists" in again.json()["details"][0]["message"]
    wanted = json.dumps({"predicates": [{"operation": 1, "key": "display_name",
                                         "stringValue": "absent"}]})
    assert requests.get(f"{api}/experiments", params={"filter": wanted, "namespace": ""},
                        timeout=10).json() == {}  # an empty list is left out
