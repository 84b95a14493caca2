"""`kfbox results --compare`: the fields compared and the exit codes, on SCHEMA.md's real report
(its copies changed one field at a time); the comparison of certificates from a bundle install
runs in tests/apps/offline/test_offline_install.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kfbox.harness.certificate import __file__ as report_package
from tests.support.cli import kfbox_cli

EXAMPLE = json.loads((Path(report_package).parent / "SCHEMA.md").read_text()
                     .split("```json\n", 1)[1].split("```", 1)[0])
WIDE = {"COLUMNS": "200"}


def results_folder(where: Path, change=lambda report: None) -> Path:
    """A results folder holding SCHEMA.md's report, changed by `change`."""
    report = json.loads(json.dumps(EXAMPLE))
    change(report)
    where.mkdir(parents=True)
    (where / "report.json").write_text(json.dumps(report))
    for name in ("junit.xml", "report.html"):
        (where / name).write_text("")
    return where


def _torch(report: dict) -> None:
    report["software"]["torch"] = "2.14.0+cpu"


def _bundle_and_failed_step(report: dict) -> None:
    report["configuration"] |= {"source": "bundle", "bundle": "ab" * 32}
    report["requirements"][0]["status"] = "failed"


def _seat_name(report: dict) -> None:
    report["configuration"]["sandbox"] = "class-7"


@pytest.mark.parametrize("change, rows", [
    (_torch, ["software.torch │ 2.13.0+cpu │ 2.14.0+cpu"]),
    (_bundle_and_failed_step, ["bundle │ (online) │ abababababababab…",
                               "configuration.source │ online │ bundle",
                               "requirement.train.process-group [core] │ passed │ failed"]),
])
def test_differences_are_one_table_and_exit_1(change, rows, tmp_path: Path) -> None:
    first = results_folder(tmp_path / "a")
    other = results_folder(tmp_path / "b", change)
    done = kfbox_cli("results", "--compare", str(first), str(other), env=WIDE)
    assert done.returncode == 1, done.stderr
    table = re.sub(r" +", " ", done.stdout)  # cells are padded to their column's width
    assert f"{len(rows)} field(s) differ" in table
    for row in rows:
        assert row in table, done.stdout


def test_another_seat_name_is_still_identical(tmp_path: Path) -> None:
    first = results_folder(tmp_path / "a")
    seat = results_folder(tmp_path / "b", _seat_name)
    done = kfbox_cli("results", "--compare", str(first), str(seat), env=WIDE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("identical: installed online, core certified, the same 11 software versions and "
            "configuration") in done.stdout


@pytest.mark.parametrize("args, line", [
    (["--compare", "a"], "error: --compare needs two or more results bundles — e.g. kfbox results "
                         "--compare seat1.tar.gz seat2.tar.gz"),
    (["a", "b"], "error: 2 results bundles given — give one results bundle, or compare them: "
                 "--compare A B ..."),
    (["--compare", "a", "missing"], "error: no results bundle at 'missing'"),
])
def test_bad_compare_input_is_one_line(args, line, tmp_path: Path) -> None:
    results_folder(tmp_path / "a")
    done = kfbox_cli("results", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(line), done.stderr
