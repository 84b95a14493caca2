"""The CI templates in ci/: each parses with a real YAML parser, validates against the
SchemaStore schema of its system (vendored by check-jsonschema), has the keys that system
requires, runs shell that parses, and gates on `kfbox certify` with the bundle kept on failure."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kfbox.harness.profiles import PROFILES
from tests.support.ci import unreachable

CI = Path(__file__).resolve().parents[3] / "ci"
GITHUB = CI / "github" / "kfbox-certify.yml"
GITLAB = CI / "gitlab" / "kfbox-certify.gitlab-ci.yml"
GITLAB_RESERVED = {
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
    "spec",
}


def _schema(name: str) -> dict[str, Any]:
    try:
        from importlib import resources

        vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
        return json.loads((vendor / name).read_text())
    except ModuleNotFoundError:
        unreachable("check-jsonschema (its vendored CI schemas) is not installed")


def _validate(document: dict[str, Any], schema_name: str) -> list[str]:
    schema = _schema(schema_name)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)]


def _github() -> dict[str, Any]:
    document = yaml.safe_load(GITHUB.read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the bare key `on` as true
    return document


def _gitlab() -> dict[str, Any]:
    return yaml.safe_load(GITLAB.read_text())


def _bash_parses(script: str) -> None:
    done = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, check=False)
    assert done.returncode == 0, f"{done.stderr}\n{script}"


def test_github_workflow_matches_the_actions_schema() -> None:
    assert _validate(_github(), "github-workflows.json") == []


def test_github_workflow_gates_on_certify_and_keeps_the_bundle() -> None:
    workflow = _github()
    assert {"on", "jobs"} <= set(workflow)
    job = workflow["jobs"]["certify"]
    assert {"runs-on", "steps"} <= set(job)
    steps = job["steps"]
    for step in steps:
        assert ("uses" in step) != ("run" in step), step
        if "uses" in step:
            assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]
        else:  # GitHub substitutes ${{ }} before the shell sees the script
            _bash_parses(re.sub(r"\$\{\{.*?\}\}", "x", step["run"]))
    by_name = {step["name"]: step for step in steps}
    certify = by_name["Certify"]
    assert "if" not in certify  # its exit code fails the job
    assert certify["run"] == 'kfbox certify --profile "$KFBOX_PROFILE" --out "$KFBOX_OUT"'
    upload = by_name["Upload the conformance bundle"]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["if"] == "always()" and by_name["Tear down"]["if"] == "always()"
    assert upload["with"]["path"] == "${{ env.KFBOX_OUT }}/"
    assert [s["name"] for s in steps].index("Bring up the sandbox") < steps.index(certify)
    choices = workflow["on"]["workflow_dispatch"]["inputs"]["profile"]
    assert choices["options"] == list(PROFILES) and choices["default"] == "core"


def test_gitlab_job_matches_the_gitlab_ci_schema() -> None:
    assert _validate(_gitlab(), "gitlab-ci.json") == []


def test_gitlab_job_gates_on_certify_and_keeps_the_bundle() -> None:
    pipeline = _gitlab()
    jobs = {name: job for name, job in pipeline.items() if name not in GITLAB_RESERVED}
    assert list(jobs) == ["kfbox-certify"]
    job = jobs["kfbox-certify"]
    assert job["stage"] in pipeline["stages"]
    assert isinstance(job["script"], list) and job["script"]  # the one key a job needs
    for key in ("before_script", "script", "after_script"):
        assert all(isinstance(line, str) for line in job[key])
        _bash_parses("\n".join(job[key]))
    assert job["script"] == ['kfbox certify --profile "$KFBOX_PROFILE" --out "$KFBOX_OUT"']
    assert "kfbox up" in job["before_script"] and "kfbox down" in job["after_script"][-1]
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["paths"] == ["$KFBOX_OUT/"]
    assert artifacts["reports"]["junit"] == "$KFBOX_OUT/*/junit.xml"
    profile = pipeline["variables"]["KFBOX_PROFILE"]
    assert profile["options"] == list(PROFILES) and profile["value"] == "core"


def test_the_schemas_catch_a_broken_template() -> None:
    """The schema check can fail: a job without `runs-on`, a step with an unknown key."""
    workflow = _github()
    del workflow["jobs"]["certify"]["runs-on"]
    workflow["jobs"]["certify"]["steps"][0]["usses"] = "typo"
    assert _validate(workflow, "github-workflows.json")
    pipeline = _gitlab()
    pipeline["kfbox-certify"]["artifacts"]["when"] = "sometimes"
    assert _validate(pipeline, "gitlab-ci.json")
