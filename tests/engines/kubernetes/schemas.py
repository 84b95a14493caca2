"""Custom resources checked against the upstream CRD schemas at the pinned tags.

upstream/crds/*.json hold each CRD's openAPIV3Schema reduced to its structure (property names,
types, required lists, enums, the x-kubernetes markers), each with the repository, tag and path
it was derived from. The double validates every custom resource written to it (over HTTP, or by
a controller stand-in) with `problems`:

- a required field missing, or a value of the wrong type: a real API server refuses the object
  (422 Invalid), as kubernetes/kubernetes v1.32 apiextensions-apiserver does for a structural
  schema (staging/src/k8s.io/apiextensions-apiserver/pkg/apiserver/validation);
- an unknown field: a real server prunes it silently (fieldValidation defaults to Warn since
  Kubernetes 1.27), so the setting never takes effect; the double refuses it instead, so a test
  sees it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

CRDS = Path(__file__).parent / "upstream" / "crds"
JSON_TYPES = {"string": (str,), "boolean": (bool,), "object": (dict,), "array": (list,),
              "integer": (int,), "number": (int, float)}
EMBEDDED = {"apiVersion", "kind", "metadata"}
"""What an embedded resource (x-kubernetes-embedded-resource) may hold beyond its schema."""


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(group/version, plural) → the reduced schema, for every recorded CRD."""
    schemas = {}
    for file in sorted(CRDS.glob("*.json")):
        data = json.loads(file.read_text())
        plural = data["crd"].split(".", 1)[0]
        schemas[f"{data['group']}/{data['version']}", plural] = data
    return schemas


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if value is None:
        return bool(schema.get("nullable"))
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    expected = schema.get("type")
    if expected is None:
        return True
    if isinstance(value, bool) and expected in ("integer", "number"):
        return False
    return isinstance(value, JSON_TYPES[expected])


def problems(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Every way `value` breaks `schema`, as `path: reason` lines (empty: it fits)."""
    if not _type_ok(value, schema):
        wanted = "integer or string" if schema.get("x-kubernetes-int-or-string") else \
            schema.get("type")
        return [f"{where or '<root>'}: Invalid value: {json.dumps(value)}: must be of type "
                f"{wanted}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: Unsupported value: {json.dumps(value)}"]
    found: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name in schema.get("required", []):
            if name not in value:
                found.append(f"{where}.{name}: Required value".lstrip("."))
        for key, item in value.items():
            path = f"{where}.{key}".lstrip(".")
            if props is not None and key in props:
                found += problems(item, props[key], path)
            elif isinstance(extra, dict):
                found += problems(item, extra, path)
            elif extra is True or schema.get("x-kubernetes-preserve-unknown-fields") or (
                    schema.get("x-kubernetes-embedded-resource") and key in EMBEDDED):
                continue
            elif props is not None or schema.get("type") == "object":
                found.append(f"{path}: unknown field")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += problems(item, schema["items"], f"{where}[{i}]")
    return found


def validate(group_version: str, plural: str, obj: dict[str, Any]) -> list[str]:
    """Problems of a custom resource against its recorded CRD schema; metadata is the API
    server's own (ObjectMeta), not the CRD's, so it is left out. Empty for unrecorded kinds."""
    recorded = crd_schemas().get((group_version, plural))
    if recorded is None:
        return []
    schema = recorded["schema"]
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    props = {k: v for k, v in schema.get("properties", {}).items() if k not in ("metadata",
                                                                                  "status")}
    return problems(body, {**schema, "properties": props})
