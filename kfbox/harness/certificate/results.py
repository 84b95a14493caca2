"""Writes the results bundle (folder + .tar.gz) on every run; reads one back for `results`."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from kfbox.harness.certificate.document import masked, parse_report, to_document
from kfbox.harness.certificate.html import render_html
from kfbox.harness.certificate.junit import journeys_junit
from kfbox.harness.certify import Certificate
from kfbox.host.errors import UsageError
from kfbox.host.redact import mask_bytes, mask_text, mask_tree

REPORT_JSON = "report.json"
REQUIRED_FILES = (REPORT_JSON, "junit.xml", "report.html")
LOGS = "logs"


@dataclass
class BundlePaths:
    folder: Path
    tarball: Path


def _redact_file(source: Path, dest: Path) -> None:
    """Copy one log file with secrets masked; JSON (the executed notebook) is masked value by
    value so it stays valid JSON, and binary files (a NUL byte early on, as git decides) are
    copied as they are."""
    data = source.read_bytes()
    if b"\0" in data[:8192]:
        if source != dest:
            shutil.copyfile(source, dest)
        return
    if source.suffix in (".json", ".ipynb"):
        try:
            data = json.dumps(mask_tree(json.loads(data)), indent=1, ensure_ascii=False).encode()
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = mask_bytes(data)
    else:
        data = mask_bytes(data)
    dest.write_bytes(data)


def _collect_logs(logs_dir: Path | None, dest: Path) -> None:
    """logs/ in the results bundle, redacted; the runner may already have written it in place."""
    dest.mkdir(parents=True, exist_ok=True)
    source = logs_dir if logs_dir is not None and logs_dir.is_dir() else dest
    for path in sorted(source.rglob("*")):
        if path.is_symlink() or not path.is_file():  # a link could point at a secret outside
            continue
        target = dest / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        _redact_file(path, target)


def _write_tarball(folder: Path, tarball: Path) -> None:
    """Written beside its final name, then renamed: a crash never leaves a complete-looking tar."""
    partial = tarball.with_name(tarball.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        # report.json first, so a reader finds the verdict without scanning the logs.
        tar.add(folder / REPORT_JSON, arcname=f"{folder.name}/{REPORT_JSON}")
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path != folder / REPORT_JSON:
                tar.add(path, arcname=f"{folder.name}/{path.relative_to(folder)}")
    os.replace(partial, tarball)


def write_bundle(
    certificate: Certificate,
    folder: Path,
    *,
    junit_xml: Path | None = None,
    logs_dir: Path | None = None,
) -> BundlePaths:
    """Write report.json, junit.xml, report.html and logs/ into `folder`, then `folder`.tar.gz
    beside it. Everything is masked for secrets. pytest's junit.xml is kept when it exists,
    else one is built from the journey records so CI always has one."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = masked(certificate)
    _collect_logs(logs_dir, folder / LOGS)
    junit_dest = folder / "junit.xml"
    if junit_xml is not None and junit_xml.is_file():
        junit_dest.write_text(mask_text(junit_xml.read_text(encoding="utf-8", errors="replace")),
                              encoding="utf-8")
    else:
        junit_dest.write_bytes(journeys_junit(safe.journeys, f"kfbox.{safe.profile}",
                                              safe.suite.error))
    (folder / "report.html").write_text(render_html(safe), encoding="utf-8")
    (folder / REPORT_JSON).write_text(json.dumps(to_document(safe), indent=2) + "\n",
                                      encoding="utf-8")
    tarball = folder.with_name(folder.name + ".tar.gz")
    _write_tarball(folder, tarball)
    return BundlePaths(folder, tarball)


def _read_folder(path: Path) -> Certificate:
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise UsageError(
            f"{path}: not a complete kfbox results bundle (missing {', '.join(missing)})",
            fix="give the folder or .tar.gz that `kfbox certify` wrote")
    return parse_report((path / REPORT_JSON).read_bytes(), str(path))


def _read_tarball(path: Path) -> Certificate:
    try:
        with tarfile.open(path, "r:gz") as tar:
            # Reading every member header walks the whole archive, so truncation shows here.
            members = tar.getmembers()
            by_name = {m.name.split("/", 1)[-1]: m for m in members if m.isfile()}
            missing = [name for name in REQUIRED_FILES if name not in by_name]
            if missing:
                raise UsageError(
                    f"{path}: not a complete kfbox results bundle (missing {', '.join(missing)})",
                    fix="give the folder or .tar.gz that `kfbox certify` wrote",
                )
            handle = tar.extractfile(by_name[REPORT_JSON])
            raw = handle.read() if handle else b""
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        detail = str(exc) or type(exc).__name__
        raise UsageError(f"{path}: corrupt or truncated results bundle archive ({detail})",
                         fix="copy it again, or re-run `kfbox certify`") from None
    return parse_report(raw, str(path))


def read_bundle(path: Path) -> Certificate:
    """The certificate in a results bundle (folder or .tar.gz); UsageError (exit 2) when it is
    missing, corrupt, truncated, incomplete or from a newer schema version."""
    if path.is_dir():
        return _read_folder(path)
    if path.is_file():
        return _read_tarball(path)
    raise UsageError(f"no results bundle at {str(path)!r}",
                     fix="give the folder or .tar.gz that `kfbox certify` wrote")
