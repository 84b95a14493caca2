"""The bundle: written as folder + tarball, valid against the documented schema, secrets masked,
read back identically, and every kind of bad bundle refused with one line."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

import kfbox.harness.certificate as report_package
from kfbox.harness.certificate.document import masked, parse_report, to_document
from kfbox.harness.certificate.results import read_bundle, write_bundle
from kfbox.harness.certify import SCHEMA_VERSION
from kfbox.host.errors import UsageError
from tests.support.records import SECRET, journey, make_certificate

SCHEMA = json.loads((Path(report_package.__file__).parent / "report.schema.json").read_text())


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _tar_files(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_folder_and_tarball_hold_the_same_files(tmp_path: Path) -> None:
    logs = tmp_path / "run-logs"
    (logs / "components").mkdir(parents=True)
    (logs / "components" / "jupyter.log").write_text("started\n")
    paths = write_bundle(make_certificate(), tmp_path / "out" / "kfbox-core-x", logs_dir=logs)
    assert paths.tarball == tmp_path / "out" / "kfbox-core-x.tar.gz"
    assert _files(paths.folder) == {"report.json", "junit.xml", "report.html",
                                    "logs/components/jupyter.log"}
    members = _tar_files(paths.tarball)
    assert next(iter(members)) == "kfbox-core-x/report.json"
    assert {name.split("/", 1)[1] for name in members} == _files(paths.folder)
    assert not list((tmp_path / "out").glob("*.partial"))


def test_report_json_matches_the_documented_schema(tmp_path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    certificate = make_certificate("full", [journey("core"), journey("gpu", train="skipped")])
    paths = write_bundle(certificate, tmp_path / "b")
    document = json.loads((paths.folder / "report.json").read_text())
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    validator.validate(document)
    documented = SCHEMA["properties"]["schema_version"]["const"]
    assert document["schema_version"] == SCHEMA_VERSION == documented
    assert list(document)[:3] == ["schema_version", "kind", "kfbox_version"]
    assert set(document["verdicts"]) == {"full", "core", "gpu"}
    assert document["certified"] is False and document["verdicts"]["core"]["certified"] is True
    assert document["configuration"]["engine"] == "lite"
    assert document["software"]["torch"] == "2.13.0"
    assert {r["status"] for r in document["requirements"]} == {"passed", "skipped"}
    document["journeys"][0]["steps"][0]["status"] = "ok"  # the schema really constrains
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(document)


def test_read_back_from_folder_and_tarball(tmp_path: Path) -> None:
    report = make_certificate(journeys=[journey(tune="failed", serve="blocked")], exit_code=1)
    paths = write_bundle(report, tmp_path / "b")
    assert read_bundle(paths.folder) == masked(report)
    assert read_bundle(paths.tarball) == masked(report)
    assert read_bundle(paths.tarball).verdicts["core"].reasons[0].startswith(
        "tune.every-trial [core] blocked: step 'tune' failed")


def test_no_secret_anywhere_in_the_bundle(tmp_path: Path) -> None:
    record = journey(build="failed")
    record.steps[1].reason = f"push refused: Authorization: Bearer {SECRET}"
    record.steps[0].metrics = {"url": f"http://127.0.0.1:8888/lab?token={SECRET}"}
    report = make_certificate(journeys=[record], exit_code=1)
    assert report.sandbox is not None
    report.sandbox.components[0].detail = f"JUPYTER_TOKEN={SECRET}"
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "jupyter.log").write_text(f"serving at http://127.0.0.1:8888/?token={SECRET}\n")
    # The tracking server's container: its CSRF key and admin password in `inspect`, and its
    # login URL (user:password@) as `status --show-token` writes it.
    (logs / "tracking.inspect.json").write_text(json.dumps({"Env": [
        f"MLFLOW_FLASK_SERVER_SECRET_KEY={SECRET}", f"MLFLOW_AUTH_ADMIN_PASSWORD={SECRET}"]}))
    (logs / "tracking.log").write_text(f"open http://kfbox:{SECRET}@127.0.0.1:5001/\n")
    notebook = {"cells": [{"outputs": [{"text": f"password: {SECRET}"}]}], "token": SECRET,
                "metadata": {"tokens": 3}}
    (logs / "executed.ipynb").write_text(json.dumps(notebook))
    junit = tmp_path / "pytest-junit.xml"
    junit.write_text(f'<testsuites><testsuite name="x" tests="1"><testcase name="t">'
                     f'<system-out>api_key={SECRET}</system-out></testcase></testsuite></testsuites>')
    paths = write_bundle(report, tmp_path / "b", junit_xml=junit, logs_dir=logs)
    everything = b"".join(p.read_bytes() for p in paths.folder.rglob("*") if p.is_file())
    everything += gzip.decompress(paths.tarball.read_bytes())
    assert SECRET.encode() not in everything
    assert b"***" in everything
    stored = json.loads((paths.folder / "logs" / "executed.ipynb").read_text())
    assert stored["token"] == "***" and stored["metadata"]["tokens"] == 3


def test_pytest_junit_is_kept_else_built_from_the_steps(tmp_path: Path) -> None:
    junit = tmp_path / "pytest.xml"
    junit.write_text('<testsuites><testsuite name="pytest" tests="7"/></testsuites>')
    kept = write_bundle(make_certificate(), tmp_path / "a", junit_xml=junit)
    assert ET.parse(kept.folder / "junit.xml").getroot()[0].get("tests") == "7"
    report = make_certificate(journeys=[journey(train="failed", tune="blocked", track="blocked",
                                                serve="blocked", pipeline="blocked")])
    built = ET.parse(write_bundle(report, tmp_path / "b").folder / "junit.xml").getroot()[0]
    assert (built.get("tests"), built.get("failures"), built.get("skipped")) == ("7", "1", "4")
    assert [c.get("name") for c in built] == ["notebook", "build", "train", "tune", "track",
                                              "serve", "pipeline"]
    assert built[0].get("classname") == "kfbox.cuj.digits.core"


def test_a_suite_that_never_ran_still_gets_a_bundle(tmp_path: Path) -> None:
    report = make_certificate(journeys=[], exit_code=None,
                              error="sandbox 'kfbox' is not running")
    paths = write_bundle(report, tmp_path / "b")
    back = read_bundle(paths.tarball)
    assert not back.certified
    assert back.verdicts["core"].reasons[0] == "sandbox 'kfbox' is not running"
    suite = ET.parse(paths.folder / "junit.xml").getroot()[0]
    assert suite.get("errors") == "1"


def test_logs_written_in_place_are_masked_and_links_are_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "run.log").write_text(f"token={SECRET}")
    outside = tmp_path / "outside.txt"
    outside.write_text("private")
    (folder / "logs" / "link.txt").symlink_to(outside)
    paths = write_bundle(make_certificate(), folder, logs_dir=folder / "logs")
    assert (folder / "logs" / "run.log").read_text() == "token=***"
    assert not any(name.endswith("link.txt") for name in _tar_files(paths.tarball))


def _bad(path: Path) -> str:
    with pytest.raises(UsageError) as caught:
        read_bundle(path)
    assert caught.value.exit_code == 2
    line = caught.value.line()
    assert "\n" not in line and str(path) in line
    return line


def test_corrupt_truncated_and_incomplete_bundles(tmp_path: Path) -> None:
    paths = write_bundle(make_certificate(), tmp_path / "b")
    data = paths.tarball.read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    assert "corrupt or truncated" in _bad(truncated)
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a tarball at all")
    assert "corrupt or truncated" in _bad(garbage)
    (paths.folder / "report.json").write_text('{"schema_version": 2, "kind": "kfbox-conf')
    assert "not valid JSON" in _bad(paths.folder)
    (paths.folder / "report.html").unlink()
    assert "missing report.html" in _bad(paths.folder)
    assert "no results bundle at" in _bad(tmp_path / "nowhere")


def _tar_with(tmp_path: Path, document: dict) -> Path:
    tarball = tmp_path / "edited.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, text in (("report.json", json.dumps(document)), ("junit.xml", "<x/>"),
                           ("report.html", "<html></html>")):
            info = tarfile.TarInfo(f"edited/{name}")
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return tarball


def test_newer_schema_wrong_kind_and_wrong_types(tmp_path: Path) -> None:
    document = to_document(make_certificate())
    assert "newer than this kfbox reads" in _bad(
        _tar_with(tmp_path, {**document, "schema_version": SCHEMA_VERSION + 1}))
    assert "not a kfbox certificate" in _bad(_tar_with(tmp_path, {**document, "kind": "x"}))
    wrong = json.loads(json.dumps(document))
    wrong["journeys"][0]["steps"][2]["status"] = "ok"
    assert "journeys.0.steps.2.status" in _bad(_tar_with(tmp_path, wrong))
    wrong = {**document, "certified": "yes"}
    assert "certified" in _bad(_tar_with(tmp_path, wrong))


def test_fields_added_within_a_version_are_ignored(tmp_path: Path) -> None:
    document = {**to_document(make_certificate()), "added_later": {"x": 1}}
    assert read_bundle(_tar_with(tmp_path, document)).certified


def test_a_schema_1_report_still_reads(tmp_path: Path) -> None:
    """A bundle written by the previous kfbox (schema 1: steps and components, no requirements)."""
    step = {"name": "train", "status": "passed", "duration_s": 1.0, "metrics": {},
            "reason": "", "started_at": "", "markers": ["core"]}
    document = {
        "schema_version": 1, "kind": "kfbox-conformance-report", "kfbox_version": "0.1.0",
        "profile": "core", "certified": True, "engine": "lite", "sandbox": "kfbox",
        "host": to_document(make_certificate())["host"],
        "suite": to_document(make_certificate())["suite"],
        "components": [{"name": "jupyter", "healthy": True, "detail": "running", "image": "x",
                        "version": "", "digest": ""}],
        "journeys": [{"scenario": "digits", "engine": "lite", "steps": [step]}],
        "verdicts": {"core": {"certified": True, "reasons": []}},
        "created_at": "2026-11-01T00:00:00+00:00",
    }
    old = read_bundle(_tar_with(tmp_path, document))
    assert old.certified and old.requirements == []
    assert old.journeys[0].variant == "core" and old.journeys[0].steps[0].name == "train"
    assert old.sandbox is not None and old.sandbox.components[0].name == "jupyter"


def test_the_documented_example_is_a_valid_report() -> None:
    """SCHEMA.md's example is a real report: it must stay valid as the schema moves on."""
    text = (Path(report_package.__file__).parent / "SCHEMA.md").read_text()
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    document = json.loads(example)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert parse_report(example.encode(), "SCHEMA.md").certified
