"""The report.json document: its dataclasses, schema version, building and parsing one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from kfbox import __version__
from kfbox.sandbox.engines.base import ComponentStatus
from kfbox.sandbox.errors import UsageError
from kfbox.sandbox.redact import mask_tree
from kfbox.sandbox.report.host import HostFacts
from kfbox.sandbox.report.model import JourneyRecord
from kfbox.sandbox.report.profiles import Profile, Verdict, verdicts

SCHEMA_VERSION = 1
"""Bumped on any change a reader of the previous version could misread (SCHEMA.md)."""
REPORT_KIND = "kfbox-conformance-report"


@dataclass
class ComponentRecord:
    name: str
    healthy: bool
    detail: str = ""
    image: str = ""
    version: str = ""
    """The image tag, when the reference has one."""
    digest: str = ""
    """The image's content digest (sha256:...), when the engine knows it."""

    @classmethod
    def from_status(cls, status: ComponentStatus) -> ComponentRecord:
        """Version and digest from the engine's image field: `repo:tag@sha256:...`, a bare
        image ID (`sha256:...`), or a release version alone (`v1.16.1`, as catalogs report)."""
        reference, _, digest = status.image.partition("@")
        if not digest and reference.startswith("sha256:"):
            reference, digest = "", reference
        _, colon, tag = reference.rpartition(":")
        if colon and "/" not in tag:
            version = tag
        else:
            version = reference if "/" not in reference and ":" not in reference else ""
        return cls(status.name, status.healthy, status.detail, status.image, version, digest)


@dataclass
class SuiteSummary:
    pytest_markers: str
    exit_code: int | None = None
    """pytest's exit code; null when the suite never started."""
    duration_s: float = 0.0
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    error: str = ""
    """Why the suite did not run or did not finish, when it did not."""


@dataclass
class Report:
    profile: str
    certified: bool
    engine: str
    sandbox: str
    host: HostFacts
    suite: SuiteSummary
    components: list[ComponentRecord] = field(default_factory=list)
    journeys: list[JourneyRecord] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    kfbox_version: str = __version__
    created_at: str = ""
    schema_version: int = SCHEMA_VERSION
    kind: str = REPORT_KIND

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, secrets masked, identified by its kind and version first."""
        data = asdict(self)
        head = {key: data.pop(key) for key in ("schema_version", "kind", "kfbox_version")}
        return mask_tree({**head, **data})

    def masked(self) -> Report:
        """A copy with every secret masked: what the HTML page and the CLI show."""
        return _ADAPTER.validate_python(self.to_dict())


def build_report(
    profile: Profile,
    *,
    engine: str,
    sandbox: str,
    host: HostFacts,
    suite: SuiteSummary,
    journeys: Sequence[JourneyRecord] = (),
    components: Sequence[ComponentStatus] = (),
) -> Report:
    """A report with its verdicts computed; a suite that never ran certifies nothing."""
    judged = verdicts(profile, journeys, components, suite_exit_code=suite.exit_code)
    if suite.error:
        for item in judged.values():
            item.certified = False
            item.reasons.insert(0, suite.error)
    return Report(
        profile=profile.name,
        certified=judged[profile.name].certified,
        engine=engine,
        sandbox=sandbox,
        host=host,
        suite=suite,
        components=[ComponentRecord.from_status(c) for c in components],
        journeys=list(journeys),
        verdicts=judged,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


_ADAPTER = TypeAdapter(Report)


def _where(error: dict[str, Any]) -> str:
    return ".".join(str(p) for p in error["loc"]) or "(top level)"


def parse_report(raw: bytes, source: str) -> Report:
    """A stored report.json, checked strictly; UsageError (exit 2) names the first problem."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{source}: report.json is not valid JSON ({exc})",
                         fix="the bundle is corrupt or truncated; re-run `kfbox certify`") from None
    if not isinstance(data, dict) or data.get("kind") != REPORT_KIND:
        raise UsageError(f"{source}: report.json is not a kfbox conformance report",
                         fix=f"expected \"kind\": \"{REPORT_KIND}\"")
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise UsageError(f"{source}: schema_version {version!r} is not a positive integer")
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{source}: report schema version {version} is newer than this kfbox reads "
            f"({SCHEMA_VERSION})",
            fix="upgrade kfbox to read it",
        )
    try:
        report = _ADAPTER.validate_json(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"{source}: report.json: {_where(first)}: {first['msg']}",
                         fix="the bundle is corrupt; re-run `kfbox certify`") from None
    if report.profile not in report.verdicts:
        raise UsageError(f"{source}: report.json has no verdict for its profile {report.profile!r}")
    return report
