"""A double of Kubeflow Model Registry v0.3.8's REST server (`/model-registry proxy`, REST API
v1alpha3 over the embedmd datastore on MySQL 8.3, as manifests/kustomize/overlays/db deploys it),
for the real `kubeflow.hub.ModelRegistryClient` (kubeflow 0.5.0 over model-registry 0.3.14) to
talk to. A double because no cluster runs here: what it serves is only what that client's
register/get/list/update of registered models, model versions and model artifacts needs, plus the
readiness probe; each rule it enforces names the upstream file at tag v0.3.8
(kubeflow/model-registry) it comes from, and where upstream does not refuse something a comment
says so. Paths below are that repository's.

Entities are kept as upstream keeps them: registered models and model versions are rows of one
Context table (one id sequence), model artifacts rows of the Artifact table; an owned entity's
stored name is `<parent id>:<name>`. Not routed (so a 404, as for any unknown path): experiments,
serving environments, inference services, other artifact endpoints. Not modelled on a route it
serves (a 501, which upstream never answers): filterQuery, name filters on lists, artifact kinds
other than model-artifact, struct custom properties, updating an artifact through its version."""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.net import http_server

API = "/api/model_registry/v1alpha3"
"""api/openapi/model-registry.yaml: every path is under this prefix."""
NOT_READY = ("Datastore service is down or unavailable. Please check that the database is "
             "reachable and try again later.")
"""cmd/proxy.go datastoreUnavailableMessage: every API path while the datastore connects (503)."""
INT32 = (-(2 ** 31), 2 ** 31 - 1)

# The request bodies' fields (pkg/openapi/model_*.go, their json tags) and their Go types. The
# controller (internal/server/openapi/api_model_registry_service.go) decodes each with
# DisallowUnknownFields; encoding/json matches keys to tags case-insensitively.
RM_CREATE = {"customProperties": "props", "description": "string", "externalId": "string",
             "name": "string", "readme": "string", "maturity": "string", "language": "strings",
             "tasks": "strings", "provider": "string", "logo": "string", "license": "string",
             "licenseLink": "string", "libraryName": "string", "owner": "string",
             "state": "RegisteredModelState"}
RM_UPDATE = {k: v for k, v in RM_CREATE.items() if k != "name"}
MV_CREATE = {"customProperties": "props", "description": "string", "externalId": "string",
             "name": "string", "state": "ModelVersionState", "author": "string",
             "registeredModelId": "string"}
MV_UPDATE = {k: v for k, v in MV_CREATE.items() if k not in ("name", "registeredModelId")}
MA_FIELDS = {"customProperties": "props", "description": "string", "externalId": "string",
             "name": "string", "id": "string", "createTimeSinceEpoch": "string",
             "lastUpdateTimeSinceEpoch": "string", "experimentId": "string",
             "experimentRunId": "string", "artifactType": "string", "modelFormatName": "string",
             "storageKey": "string", "storagePath": "string", "modelFormatVersion": "string",
             "serviceAccountName": "string", "modelSourceKind": "string",
             "modelSourceClass": "string", "modelSourceGroup": "string", "modelSourceId": "string",
             "modelSourceName": "string", "uri": "string", "state": "ArtifactState"}
"""pkg/openapi/model_model_artifact.go ModelArtifact: the body of an artifact upsert."""
STATES = {"RegisteredModelState": ("LIVE", "ARCHIVED"), "ModelVersionState": ("LIVE", "ARCHIVED"),
          "ArtifactState": ("UNKNOWN", "PENDING", "LIVE", "MARKED_FOR_DELETION", "DELETED",
                            "ABANDONED", "REFERENCE")}
"""pkg/openapi/model_*_state.go Allowed*EnumValues: each state's UnmarshalJSON refuses others."""
METADATA = {"MetadataBoolValue": ("bool_value", "bool"),
            "MetadataDoubleValue": ("double_value", "float64"),
            "MetadataIntValue": ("int_value", "string"),
            "MetadataProtoValue": ("proto_value", "string"),
            "MetadataStringValue": ("string_value", "string"),
            "MetadataStructValue": ("struct_value", "string")}
"""pkg/openapi/model_metadata_value.go: MetadataValue's discriminator `metadataType` and the
value field each kind is decoded with (json.Unmarshal, not strict; a missing one is Go's zero)."""
NILS = "{<nil> <nil> <nil> <nil> <nil> <nil>}"
"""How %v prints a MetadataValue whose six kinds are all nil (no known metadataType)."""


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any] | str) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def error(status: int, message: str, code: int | None = None) -> Refused:
    """internal/server/openapi/helpers.go ErrorResponse: pkg/openapi Error, `code` the status
    text. error.go DefaultErrorHandler answers a RequiredError 422 with the text of 400."""
    return Refused(status, {"code": HTTPStatus(code or status).phrase, "message": message})


def bad(message: str) -> Refused:
    """pkg/api/error.go ErrToStatus: an error wrapping ErrBadRequest ("bad request") is a 400."""
    return error(400, message)


def not_found(message: str) -> Refused:
    return error(404, f"{message}: not found")  # api.ErrNotFound


def conflict(message: str) -> Refused:
    return error(409, f"{message}: conflict")  # api.ErrConflict


def not_modelled(what: str) -> Refused:
    return Refused(501, {"code": "Not Implemented", "message": f"not modelled by the double: "
                                                               f"{what}"})


def parse_int32(text: str) -> tuple[int | None, str]:
    """Go's strconv.ParseInt(text, 10, 32): the value, or its error's text."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None, f'strconv.ParseInt: parsing {json.dumps(text)}: invalid syntax'
    value = int(text)
    if not INT32[0] <= value <= INT32[1]:
        return None, f'strconv.ParseInt: parsing {json.dumps(text)}: value out of range'
    return value, ""


def valid_id(text: str, entity: str) -> int:
    """internal/apiutils/api_utils.go ValidateIDAsInt32: ids are int32 row ids, else a 400."""
    value, why = parse_int32(text)
    if value is None:
        raise bad(f"invalid {entity} ID: {why}: bad request")
    return value


def like(pattern: str, value: str) -> bool:
    """MySQL's `name LIKE ?` (internal/db/service/registered_model.go, model_version.go,
    artifact.go use LIKE, not =, for names): `%` and `_` are wildcards, `\\` escapes; and, as
    the Context and Artifact tables set no collation (embedmd/mysql/migrations 000001, 000005)
    on overlays/db's mysql:8.3, utf8mb4_0900_ai_ci compares case-insensitively (its accent
    folding is not modelled)."""
    regex, escaped = "", False
    for char in pattern:
        if escaped:
            regex, escaped = regex + re.escape(char), False
        elif char == "\\":
            escaped = True
        else:
            regex += {"%": ".*", "_": "."}.get(char, re.escape(char))
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


def same(a: str | None, b: str | None) -> bool:
    """A unique key's comparison under that collation (case-insensitive)."""
    return a is not None and b is not None and a.casefold() == b.casefold()


def kind_of(value: Any) -> str:
    """The JSON kind encoding/json names in an UnmarshalTypeError."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def parse_body(body: bytes, type_name: str) -> dict[str, Any]:
    """json.Decoder.Decode into a struct: one JSON value (what follows it is not read)."""
    text = body.decode("utf-8", "replace").lstrip()
    if not text:
        raise bad("EOF")  # a ParsingError: 400, the decoder's own text
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as exc:
        raise bad(f"invalid character in JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise bad(f"json: cannot unmarshal {kind_of(value)} into Go value of type "
                  f"openapi.{type_name}")
    return value


def metadata_value(key: str, value: Any) -> tuple[str | None, Any]:
    """pkg/openapi/model_metadata_value.go MetadataValue.UnmarshalJSON: a value must be a JSON
    object; a known `metadataType` (exact case) decodes that kind, type-checked; any other, or
    none, decodes to an empty MetadataValue that only fails later (see convert_custom)."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise bad("failed to unmarshal JSON into map for the discriminator lookup")
    kind = value.get("metadataType")
    if kind not in METADATA:
        return None, None
    name, go_type = METADATA[kind]
    fields = {k.lower(): v for k, v in value.items()}
    raw = fields.get(name)
    if raw is None:
        return kind, {"bool": False, "float64": 0.0, "string": ""}[go_type]  # Go's zero value
    ok = {"bool": isinstance(raw, bool), "string": isinstance(raw, str),
          "float64": isinstance(raw, int | float) and not isinstance(raw, bool)}[go_type]
    if not ok:
        raise bad(f"failed to unmarshal MetadataValue as {kind}: json: cannot unmarshal "
                  f"{kind_of(raw)} into Go struct field {kind}.{name} of type {go_type}")
    return kind, raw


def decode(body: bytes, fields: dict[str, str], type_name: str,
           defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """A body as the controller decodes it: a field not in the struct is refused (400, the
    decoder's `json: unknown field`), a value of the wrong JSON kind too; null leaves a field
    unset; `*WithDefaults` fills `state` first (LIVE for registered models and versions)."""
    request = parse_body(body, type_name)
    by_tag = {name.lower(): name for name in fields}
    out: dict[str, Any] = dict(defaults or {})
    for key, value in request.items():
        name = by_tag.get(key.lower())
        if name is None:
            raise bad(f'json: unknown field "{key}"')
        if value is None:
            out.pop(name, None)
            continue
        go_type = fields[name]
        if go_type == "props":
            if not isinstance(value, dict):
                raise bad(f"json: cannot unmarshal {kind_of(value)} into Go struct field "
                          f"{type_name}.{name} of type map[string]openapi.MetadataValue")
            out[name] = {k: metadata_value(k, v) for k, v in value.items()}
        elif go_type == "strings":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad(f"json: cannot unmarshal {kind_of(value)} into Go struct field "
                          f"{type_name}.{name} of type []string")
            out[name] = value
        elif go_type in STATES:
            if not isinstance(value, str):
                raise bad(f"json: cannot unmarshal {kind_of(value)} into Go value of type "
                          "string")
            if value not in STATES[go_type]:
                raise bad(f"{value} is not a valid {go_type}")
            out[name] = value
        else:
            if not isinstance(value, str):
                raise bad(f"json: cannot unmarshal {kind_of(value)} into Go struct field "
                          f"{type_name}.{name} of type string")
            out[name] = value
    return out


def required(request: dict[str, Any], *names: str) -> None:
    """internal/server/openapi/type_asserts.go Assert*Required: a required field left at its
    zero value is a RequiredError, answered 422 with a 400's body (error.go). Upstream checks
    the fields in Go map order (random) when several are missing; here in the order given."""
    for name in names:
        if not request.get(name):
            raise error(422, f"required field '{name}' is zero value.", code=400)


def convert_custom(decoded: dict[str, tuple[str | None, Any]]) -> dict[str, dict[str, Any]]:
    """internal/converter/openapi_embedmd_converter_util.go MapOpenAPICustomPropertiesEmbedMD, as
    the core wraps its error ("error setting field CustomProperties", then ErrBadRequest: 400):
    no known kind (or a proto value) is refused, an int must parse as an int32. The values come
    back as internal/converter/embdemd_openapi_converter_util.go MapEmbedMDCustomProperties
    writes them (an int as its decimal string). Upstream reports the first bad key in Go map
    order (random); here in the body's order."""
    def refuse(why: str) -> Refused:
        return bad(f"error setting field CustomProperties: bad request: {why}: bad request")

    stored: dict[str, dict[str, Any]] = {}
    for key, (kind, value) in decoded.items():
        if kind is None:
            raise refuse(f"metadataType not found for {key}: {NILS}")
        if kind == "MetadataProtoValue":  # decoded, but the converter has no case for it
            raise refuse(f"metadataType not found for {key}: "
                         "{<nil> <nil> <nil> 0xc000000000 <nil> <nil>}")
        if kind == "MetadataStructValue":
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise refuse(f"unable to decode {exc} for key {key}") from exc
            raise not_modelled("MetadataStructValue custom properties")
        if kind == "MetadataIntValue":
            number, why = parse_int32(value)
            if number is None:
                raise refuse(f"unable to decode as int64 invalid numeric string: {why} "
                             f"for key {key}")
            value = str(number)
        name = METADATA[kind][0]
        stored[key] = {name: value, "metadataType": kind}
    return stored


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Record:
    """One row as upstream stores it: a Context (registered model, model version) or an
    Artifact (model artifact) with its properties."""

    kind: str
    """RegisteredModel, ModelVersion or ModelArtifact."""
    id: int
    stored_name: str
    """The row's name: a registered model's own, `<parent id>:<name>` for an owned entity
    (internal/converter/openapi_converter_util.go PrefixWhenOwned)."""
    parent: int | None
    """ParentContext (a version's registered model) or Attribution (an artifact's version)."""
    props: dict[str, Any]
    """The upstream JSON fields other than id, name, times and customProperties."""
    custom: dict[str, dict[str, Any]]
    created: int = field(default_factory=now_ms)
    updated: int = 0

    def __post_init__(self) -> None:
        self.updated = self.updated or self.created

    @property
    def name(self) -> str:
        """internal/converter/openapi_converter_util.go MapNameFromOwned: what follows the
        first `:` of an owned entity's stored name."""
        if self.kind == "RegisteredModel" or ":" not in self.stored_name:
            return self.stored_name
        return self.stored_name.split(":", 1)[1]

    def json(self) -> dict[str, Any]:
        """pkg/openapi model_registered_model.go, model_model_version.go, model_model_artifact.go
        ToMap: unset fields left out; customProperties always (the store maps an entity's
        custom properties to a map, empty or not); ids and times as strings."""
        body: dict[str, Any] = {"customProperties": self.custom, **self.props, "name": self.name,
                                "id": str(self.id), "createTimeSinceEpoch": str(self.created),
                                "lastUpdateTimeSinceEpoch": str(self.updated)}
        if self.kind == "ModelVersion":
            body["registeredModelId"] = str(self.parent)
        if self.kind == "ModelArtifact":
            body["artifactType"] = "model-artifact"
        return body


@dataclass
class Call:
    """One request as the double received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


class ModelRegistryDouble:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.contexts: dict[int, Record] = {}
        """Registered models and model versions: one table, one id sequence (Context)."""
        self.artifacts: dict[int, Record] = {}
        self.calls: list[Call] = []
        self.ready = True
        """False: the datastore is still connecting (cmd/proxy.go runProxyServer)."""
        self.next_context = 1
        self.next_artifact = 1
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., tuple[int, Any]]]] = [
            ("GET", re.compile(rf"{API}/registered_model"), self.find_registered_model),
            ("GET", re.compile(rf"{API}/registered_models"), self.list_registered_models),
            ("POST", re.compile(rf"{API}/registered_models"), self.create_registered_model),
            ("GET", re.compile(rf"{API}/registered_models/([^/]+)"), self.get_registered_model),
            ("PATCH", re.compile(rf"{API}/registered_models/([^/]+)"),
             self.update_registered_model),
            ("GET", re.compile(rf"{API}/registered_models/([^/]+)/versions"), self.list_versions),
            ("GET", re.compile(rf"{API}/model_version"), self.find_model_version),
            ("POST", re.compile(rf"{API}/model_versions"), self.create_model_version),
            ("GET", re.compile(rf"{API}/model_versions/([^/]+)"), self.get_model_version),
            ("PATCH", re.compile(rf"{API}/model_versions/([^/]+)"), self.update_model_version),
            ("GET", re.compile(rf"{API}/model_versions/([^/]+)/artifacts"), self.list_artifacts),
            ("POST", re.compile(rf"{API}/model_versions/([^/]+)/artifacts"),
             self.upsert_artifact),
            ("GET", re.compile(rf"{API}/model_artifact"), self.find_model_artifact),
            ("GET", re.compile(rf"{API}/model_artifacts/([^/]+)"), self.get_model_artifact),
        ]

    # ---- what a test reads ---------------------------------------------------------------------

    def registered_model(self, name: str) -> dict[str, Any] | None:
        """The registered model of that exact name as the server would answer it."""
        found = [r for r in self.contexts.values()
                 if r.kind == "RegisteredModel" and r.name == name]
        return found[0].json() if found else None

    def model_versions(self, name: str) -> list[dict[str, Any]]:
        model = self.registered_model(name)
        return [r.json() for r in self.contexts.values() if model and r.kind == "ModelVersion"
                and r.parent == int(model["id"])]

    def model_artifacts(self, name: str, version: str) -> list[dict[str, Any]]:
        ids = [int(v["id"]) for v in self.model_versions(name) if v["name"] == version]
        return [r.json() for r in self.artifacts.values() if r.parent in ids]

    # ---- the server --------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str],
               body: bytes) -> tuple[int, dict[str, Any] | str]:
        with self.lock:
            try:
                parsed: Any = json.loads(body) if body.strip() else None
            except ValueError:
                parsed = body.decode("utf-8", "replace")
            self.calls.append(Call(method, path, query, parsed))
            # cmd/proxy.go: the readiness paths are matched by suffix, ahead of the router.
            if path.endswith(("/readyz/health", "/readyz/isDirty")):
                return self.readiness(method, path)
            if not self.ready:
                return 503, NOT_READY + "\n"  # http.Error: text/plain
            self.validate(query, body)
            allowed = False
            for verb, pattern, handler in self.routes:
                found = pattern.fullmatch(path)
                if found and verb == method:
                    return handler(*found.groups(), query=query, body=body)
                allowed = allowed or bool(found)
            if allowed:
                return 405, ""  # go-chi: a known path, another method
            return 404, "404 page not found\n"  # go-chi: http.NotFound

    def readiness(self, method: str, path: str) -> tuple[int, str]:
        """internal/proxy/readiness.go GeneralReadinessHandler: GET only; `OK` when every check
        passes. /readyz/health (the readinessProbe, base/model-registry-deployment.yaml) fails
        until the service is up (cmd/proxy.go ConditionalModelRegistryHealthChecker); the
        database check behind both paths always passes here."""
        if method != "GET":
            return 405, "method not allowed\n"
        if path.endswith("/readyz/health") and not self.ready:
            return 503, "model registry service not yet initialized"
        return 200, "OK"

    @staticmethod
    def validate(query: dict[str, str], body: bytes) -> None:
        """internal/server/middleware/validation.go ValidationMiddleware: a NUL (or its JSON
        escape) in a query value or in the body is refused, 400."""
        nul = ("\x00", "\\u0000")
        for name, value in query.items():
            if any(n in value for n in nul):
                raise bad(f"Invalid {name} query parameter: invalid {name} parameter: contains "
                          "null bytes which are not allowed")
        if body and any(n.encode() in body for n in nul):
            raise bad("Request body contains null bytes which are not allowed")

    # ---- registered models (internal/core/registered_model.go) -------------------------------

    def find_registered_model(self, *, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        """GetRegisteredModelByParams: a name (LIKE) or else an externalId; none found or more
        than one is a 404, which the client takes for "no such model"."""
        name, external = query.get("name") or None, query.get("externalId") or None
        if name is None and external is None:
            raise bad("invalid parameters call, supply either name or externalId: bad request")
        found = [r for r in self.rows("RegisteredModel") if (
            like(name, r.stored_name) if name is not None else same(r.props.get("externalId"),
                                                                     external))]
        params = f"name={name or ''}, externalId={external or ''}"
        if len(found) != 1:
            raise not_found(f"{'no' if not found else 'multiple'} registered models found for "
                            f"{params}")
        return 200, found[0].json()

    def list_registered_models(self, *, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        return 200, self.page(self.rows("RegisteredModel"), query)

    def create_registered_model(self, *, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        request = decode(body, RM_CREATE, "RegisteredModelCreate", {"state": "LIVE"})
        required(request, "name")
        custom = convert_custom(request.pop("customProperties", {}))
        self.unique(request["name"], request.get("externalId"), None,
                    f"registered model with name {request['name']} already exists")
        record = Record("RegisteredModel", self.context_id(), request.pop("name"), None,
                        request, custom)
        self.contexts[record.id] = record
        return 201, record.json()

    def get_registered_model(self, id_: str, *, query: dict[str, str],
                             body: bytes) -> tuple[int, Any]:
        return 200, self.registered(id_).json()

    def update_registered_model(self, id_: str, *, query: dict[str, str],
                                body: bytes) -> tuple[int, Any]:
        """UpdateRegisteredModel (api_model_registry_service_service.go): decode, then the
        model by id, then internal/converter OpenAPIReconciler UpdateExistingRegisteredModel:
        a field in the body replaces the stored one, one left out stays; customProperties, when
        given, replace the whole map (generic_repository.go handleProperties deletes the keys it
        no longer names), `{}` clears it."""
        request = decode(body, RM_UPDATE, "RegisteredModelUpdate")
        record = self.registered(id_)
        return 200, self.patch(record, request, f"registered model with name {record.name} "
                                                "already exists").json()

    def list_versions(self, id_: str, *, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        """GetRegisteredModelVersions: the versions whose ParentContext is the model; an unknown
        model is an empty list, not a 404 (internal/core/model_version.go GetModelVersions)."""
        if any(query.get(k) for k in ("name", "externalId")):
            raise not_modelled("name or externalId filters (a filterQuery upstream)")
        parent = valid_id(id_, "registered model")
        return 200, self.page([r for r in self.rows("ModelVersion") if r.parent == parent],
                              query)

    # ---- model versions (internal/core/model_version.go) -------------------------------------

    def find_model_version(self, *, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        """GetModelVersionByParams: a name with its parentResourceId (the stored name LIKE
        `<parent>:<name>`, then the ParentContext), or an externalId."""
        name, external = query.get("name") or None, query.get("externalId") or None
        parent_text = query.get("parentResourceId") or None
        if (name is None or parent_text is None) and external is None:
            raise bad("invalid parameters call, supply either (name and parentResourceId), or "
                      "externalId: bad request")
        parent = valid_id(parent_text, "registered model") if parent_text else None
        found = []
        for r in self.rows("ModelVersion"):
            if name is not None:
                pattern = f"{parent}:{name}" if parent is not None else f"%:{name}"
                if not like(pattern, r.stored_name):
                    continue
            elif not same(r.props.get("externalId"), external):
                continue
            if parent is None or r.parent == parent:
                found.append(r)
        params = (f"name={name or ''}, parentResourceId={parent_text or ''}, "
                  f"externalId={external or ''}")
        if len(found) != 1:
            raise not_found(f"{'no' if not found else 'multiple'} model versions found for "
                            f"{params}")
        return 200, found[0].json()

    def create_model_version(self, *, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        """CreateModelVersion then UpsertModelVersion. registeredModelId must be an int32
        (openapi_embedmd_converter_util.go MapModelVersionPropertiesEmbedMD); upstream does NOT
        check that such a registered model exists (no such lookup in UpsertModelVersion, and the
        MySQL ParentContext table has no foreign key, embedmd/mysql/migrations/000012), so
        neither does the double: the version is stored under that id."""
        request = decode(body, MV_CREATE, "ModelVersionCreate", {"state": "LIVE"})
        required(request, "name", "registeredModelId")
        raw_parent = request.pop("registeredModelId")
        parent, why = parse_int32(raw_parent)
        if parent is None:
            raise bad(f"error setting field Properties: invalid numeric string: {why}: "
                      "bad request")
        custom = convert_custom(request.pop("customProperties", {}))
        name = request.pop("name")
        # The stored name prefixes the id as sent (PrefixWhenOwned); Context's unique key
        # (type_id, name) makes a version name unique within its registered model: 409.
        stored = f"{raw_parent}:{name}"
        self.unique(stored, request.get("externalId"), None,
                    f"model version with name {name} already exists", kind="ModelVersion")
        record = Record("ModelVersion", self.context_id(), stored, parent, request, custom)
        self.contexts[record.id] = record
        return 201, record.json()

    def get_model_version(self, id_: str, *, query: dict[str, str],
                          body: bytes) -> tuple[int, Any]:
        return 200, self.version(id_).json()

    def update_model_version(self, id_: str, *, query: dict[str, str],
                             body: bytes) -> tuple[int, Any]:
        """UpdateModelVersion: as update_registered_model (name and registeredModelId are not
        in ModelVersionUpdate, so sending them is an unknown field)."""
        request = decode(body, MV_UPDATE, "ModelVersionUpdate")
        record = self.version(id_)
        return 200, self.patch(record, request, f"model version with name {record.name} "
                                                "already exists").json()

    # ---- model artifacts (internal/core/artifact.go) -----------------------------------------

    def list_artifacts(self, id_: str, *, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        if any(query.get(k) for k in ("name", "externalId", "artifactType")):
            raise not_modelled("name, externalId or artifactType filters")
        parent = valid_id(id_, "parent resource")  # GetArtifacts: no lookup of the version
        return 200, self.page([r for r in self.artifacts.values() if r.parent == parent], query)

    def upsert_artifact(self, id_: str, *, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        """UpsertModelVersionArtifact. The body is a oneOf Artifact whose UnmarshalJSON
        (pkg/openapi/model_artifact.go) picks the kind by `artifactType` and decodes it with
        json.Unmarshal, NOT strictly: fields ModelArtifact does not have are dropped, not
        refused. The version must exist (a 404 first); an artifactType that matches no kind is
        refused after that (upsertArtifact: "invalid artifact type", 400)."""
        request = parse_body(body, "Artifact")
        kind = request.get("artifactType")
        if kind in ("doc-artifact", "dataset-artifact", "metric", "parameter"):
            raise not_modelled(f"{kind} artifacts")
        artifact = None
        if kind == "model-artifact":
            try:
                artifact = decode(json.dumps({k: v for k, v in request.items()
                                              if k.lower() in {f.lower() for f in MA_FIELDS}})
                                  .encode(), MA_FIELDS, "ModelArtifact")
            except Refused as refused:
                message = refused.body["message"] if isinstance(refused.body, dict) else ""
                raise bad(f"failed to unmarshal Artifact as ModelArtifact: {message}") \
                    from refused
        version = self.version(id_)
        if artifact is None:
            raise bad("invalid artifact type, must be either ModelArtifact, DocArtifact, "
                      "DataSet, Metric, or Parameter: bad request")
        if artifact.get("id") is not None:
            raise not_modelled("updating an artifact through its version")
        for key in ("experimentId", "experimentRunId"):
            if artifact.pop(key, None) is not None:
                raise not_modelled(key)
        for key in ("artifactType", "createTimeSinceEpoch", "lastUpdateTimeSinceEpoch"):
            artifact.pop(key, None)  # the type is fixed, the times are the store's
        name = artifact.pop("name", None) or str(uuid.uuid4())  # ensureArtifactName
        custom = convert_custom(artifact.pop("customProperties", {}))
        stored = f"{version.id}:{name}"  # Artifact's unique key (type_id, name): 409
        self.unique(stored, artifact.get("externalId"), None,
                    f"model artifact with name {name} already exists", kind="ModelArtifact")
        record = Record("ModelArtifact", self.next_artifact, stored, version.id, artifact, custom)
        self.next_artifact += 1
        self.artifacts[record.id] = record
        return 201, record.json()  # 201 when the artifact had no id

    def find_model_artifact(self, *, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        """GetModelArtifactByParams: a name (the stored name LIKE `%:<name>`) with its
        parentResourceId (the Attribution), or an externalId."""
        name, external = query.get("name") or None, query.get("externalId") or None
        parent_text = query.get("parentResourceId") or None
        if (name is None or parent_text is None) and external is None:
            raise bad("invalid parameters call, supply either (artifactName and "
                      "parentResourceId), or externalId: bad request")
        parent = valid_id(parent_text, "parent resource") if parent_text else None
        found = [r for r in self.artifacts.values()
                 if (like(f"%:{name}", r.stored_name) if name is not None
                     else same(r.props.get("externalId"), external))
                 and (parent is None or r.parent == parent)]
        params = (f"name={name or ''}, parentResourceId={parent_text or ''}, "
                  f"externalId={external or ''}")
        if len(found) != 1:
            raise not_found(f"{'no' if not found else 'multiple'} model artifacts found for "
                            f"{params}")
        return 200, found[0].json()

    def get_model_artifact(self, id_: str, *, query: dict[str, str],
                           body: bytes) -> tuple[int, Any]:
        key = valid_id(id_, "artifact")
        if key not in self.artifacts:
            raise not_found(f"no artifact found for id {id_}")
        return 200, self.artifacts[key].json()

    # ---- helpers -------------------------------------------------------------------------------

    def rows(self, kind: str) -> list[Record]:
        return [r for r in self.contexts.values() if r.kind == kind]

    def context_id(self) -> int:
        self.next_context += 1
        return self.next_context - 1

    def registered(self, id_: str) -> Record:
        """GetRegisteredModelById: an int32 id (else 400), a row of that type (else 404)."""
        key = valid_id(id_, "registered model")
        record = self.contexts.get(key)
        if record is None or record.kind != "RegisteredModel":
            raise not_found(f"no registered model found for id {id_}")
        return record

    def version(self, id_: str) -> Record:
        key = valid_id(id_, "model version")
        record = self.contexts.get(key)
        if record is None or record.kind != "ModelVersion":
            raise not_found(f"no model version found for id {id_}")
        return record

    def unique(self, stored: str, external: str | None, own: int | None, message: str,
               kind: str = "RegisteredModel") -> None:
        """The unique keys (embedmd/mysql/migrations 000001 Artifact, 000005 Context):
        (type_id, name) within a type, external_id across the whole table; gorm's
        ErrDuplicatedKey becomes api.ErrConflict with the entity's "already exists" message
        (internal/core: registered_model.go, model_version.go, artifact.go), 409."""
        table = self.artifacts if kind == "ModelArtifact" else self.contexts
        for r in table.values():
            if r.id != own and ((r.kind == kind and same(r.stored_name, stored))
                                or same(r.props.get("externalId"), external)):
                raise conflict(message)

    def patch(self, record: Record, request: dict[str, Any], message: str) -> Record:
        custom = (convert_custom(request.pop("customProperties"))
                  if "customProperties" in request else record.custom)
        self.unique(record.stored_name, request.get("externalId"), record.id, message,
                    kind=record.kind)
        record.props.update(request)
        record.custom = custom
        record.updated = now_ms()
        return record

    def page(self, records: list[Record], query: dict[str, str]) -> dict[str, Any]:
        """A list as internal/db/service/generic_repository.go List and
        internal/db/scopes/paginate.go make it: ordered by orderBy (ID, CREATE_TIME,
        LAST_UPDATE_TIME; anything else is the id) then id, sortOrder ASC unless DESC; no
        pageSize is every row; a next page's token is base64 of `<id>:<value>`, empty after
        the last page."""
        if query.get("filterQuery"):
            raise not_modelled("filterQuery")
        size_text = query.get("pageSize") or ""
        size, why = parse_int32(size_text) if size_text else (0, "")
        if size is None:  # api_model_registry_service_service.go buildListOption
            raise bad(f"invalid numeric string: {why}: bad request")
        column: Callable[[Record], int] = {
            "CREATE_TIME": lambda r: r.created,
            "LAST_UPDATE_TIME": lambda r: r.updated}.get(query.get("orderBy", ""),
                                                        lambda r: r.id)
        descending = query.get("sortOrder") == "DESC"
        ordered = sorted(records, key=lambda r: (column(r), r.id), reverse=descending)
        token = query.get("nextPageToken") or ""
        if token:
            try:
                cursor_id, value = base64.b64decode(token, validate=True).decode().split(":", 1)
                after = (int(value), int(cursor_id))
            except (ValueError, UnicodeDecodeError) as exc:
                raise bad(f"invalid nextPageToken: {exc}: bad request") from exc
            ordered = [r for r in ordered if ((column(r), r.id) < after if descending
                                              else (column(r), r.id) > after)]
        more = 0 < size < len(ordered)
        items = ordered[:size] if size > 0 else ordered
        next_token = ""
        if more:
            last = items[-1]
            next_token = base64.b64encode(f"{last.id}:{column(last)}".encode()).decode()
        return {"nextPageToken": next_token, "pageSize": size, "size": len(items),
                "items": [r.json() for r in items]}


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request's body, by Content-Length or chunked."""
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        data = b""
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return data
            data += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


@contextmanager
def serve(double: ModelRegistryDouble) -> Iterator[int]:
    """Run the double on 127.0.0.1 in a thread; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            url = urlsplit(self.path)
            # Go's url.Values.Get: a parameter's first value.
            query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            body = read_body(self)
            try:
                status, answer = double.handle(self.command, url.path, query, body)
            except Refused as refused:
                status, answer = refused.status, refused.body
            if isinstance(answer, str):
                data, kind = answer.encode(), "text/plain; charset=utf-8"
            else:  # helpers.go EncodeJSONResponse: json.Encoder, so a trailing newline
                data, kind = (json.dumps(answer) + "\n").encode(), \
                    "application/json; charset=UTF-8"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = _any

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as port:
        yield port
