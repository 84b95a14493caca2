"""report.json: the certificate as a JSON document (secrets masked, kind and version first), and
a stored one read back strictly, from any schema version up to this kfbox's own."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from pydantic import TypeAdapter, ValidationError

from kfbox.harness.certify import REPORT_KIND, SCHEMA_VERSION, Certificate
from kfbox.host.errors import UsageError
from kfbox.host.redact import mask_tree

_ADAPTER = TypeAdapter(Certificate)
HEAD = ("schema_version", "kind", "kfbox_version")


def to_document(certificate: Certificate) -> dict[str, Any]:
    """The JSON document, secrets masked, identified by its kind and version first."""
    data = asdict(certificate)
    head = {key: data.pop(key) for key in HEAD}
    return mask_tree({**head, **data})


def masked(certificate: Certificate) -> Certificate:
    """A copy with every secret masked: what the HTML page and the CLI show."""
    return _ADAPTER.validate_python(to_document(certificate))


def _where(error: dict[str, Any]) -> str:
    return ".".join(str(p) for p in error["loc"]) or "(top level)"


def _from_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 report in the current layout: it judged steps, not requirements, so it has
    no requirement results; its components become the sandbox record."""
    journeys = []
    for journey in data.get("journeys", []):
        steps = [{k: v for k, v in step.items() if k != "markers"} | {"checks": []}
                 for step in journey.get("steps", [])]
        markers = {m for step in journey.get("steps", []) for m in step.get("markers", [])}
        variant = next((v for v in ("quick", "core", "gpu") if v in markers), "")
        journeys.append({"scenario": journey.get("scenario", ""), "variant": variant,
                         "engine": journey.get("engine", ""), "steps": steps})
    components = [{k: c.get(k, "") for k in ("name", "healthy", "detail", "image")}
                  for c in data.get("components", [])]
    return {
        **{key: data.get(key) for key in (*HEAD, "created_at", "profile", "certified", "host",
                                          "suite")},
        "schema_version": SCHEMA_VERSION,
        "configuration": {"engine": data.get("engine", ""), "sandbox": data.get("sandbox", ""),
                          "profile": data.get("profile", ""), "scenario": ""},
        "verdicts": {name: {**item, "warnings": []}
                     for name, item in (data.get("verdicts") or {}).items()},
        "journeys": journeys,
        "sandbox": {"name": data.get("sandbox", ""), "engine": data.get("engine", ""),
                    "state": "", "components": components},
    }


def parse_report(raw: bytes, source: str) -> Certificate:
    """A stored report.json, checked strictly; UsageError (exit 2) names the first problem."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{source}: report.json is not valid JSON ({exc})",
                         fix="the results bundle is corrupt or truncated; re-run `kfbox certify`"
                         ) from None
    if not isinstance(data, dict) or data.get("kind") != REPORT_KIND:
        raise UsageError(f"{source}: report.json is not a kfbox certificate",
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
    if version == 1:
        raw = json.dumps(_from_version_1(data)).encode()
    try:
        certificate = _ADAPTER.validate_json(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"{source}: report.json: {_where(first)}: {first['msg']}",
                         fix="the results bundle is corrupt; re-run `kfbox certify`") from None
    if certificate.profile not in certificate.verdicts:
        raise UsageError(
            f"{source}: report.json has no verdict for its profile {certificate.profile!r}"
        )
    return certificate
