"""An HTTP Kubernetes API double: kmock's emulator plus the server behaviour kfbox relies on.

kmock stores objects and routes requests; this subclass adds what a real API server does and
kmock does not: uid, resourceVersion and creationTimestamp on every object, 201 on create,
server-side apply with field ownership per manager (ssa.py), admission (the CRD schemas of
schemas.py and the upstream webhooks of webhooks.py, registered by the tests), label selectors
on lists (equality- and set-based), the status subresource, the pods/log subresource (text set
by tests), and a configurable /version. It runs on 127.0.0.1 in a background thread so
synchronous clients (the kubernetes package, the Kubeflow SDK, KServe's SDK) talk to it over
real HTTP.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
import rbac
import ssa
from kmock._internal import dicts, enums, parsing, rendering

APPLY_PATCH = "application/apply-patch+yaml"
CLIENT_USER = "kubernetes-admin"
"""The user of every request over HTTP (kind's kubeconfig user); controllers' writes name theirs."""


class Denied(Exception):
    """An admission refusal: what a real server answers (code and message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Write:
    """An object about to be stored: what admission (schemas, webhooks) sees."""

    group_version: str
    plural: str
    namespace: str | None
    obj: dict[str, Any]
    old: dict[str, Any] | None
    """The stored object before this write; None on create."""
    user: str = CLIENT_USER
    """Who makes the request (request.userInfo.username in admission)."""


Admission = Callable[["KubeApiDouble", Write], None]
"""Raises Denied to refuse a write, as a CRD schema or a validating webhook would."""


_kmock_parse_path = parsing.parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    """kmock reads /api/v1/namespaces[/NAME[/status]] as a namespace prefix with nothing after
    it (and fails); a real server treats it as the cluster-scoped `namespaces` resource."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and (
        len(parts) <= 4 or (len(parts) == 5 and parts[4] in ("status", "finalize"))
    ):
        name = parts[3] if len(parts) > 3 else None
        sub = parts[4] if len(parts) > 4 else None
        return parsing.ParsedPath("", "v1", "namespaces", None, name, sub)
    return _kmock_parse_path(path)


parsing.parse_path = _parse_path


SET_TERM = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")


def _selector_terms(selector: str) -> list[str]:
    """Split on the commas between terms, not those inside a set's parentheses."""
    return [t.strip() for t in re.split(r",(?![^(]*\))", selector) if t.strip()]


def _term_matches(term: str, labels: dict[str, str]) -> bool:
    """One term of a label selector, equality-based (`a=b`, `a==b`, `a!=b`, `a`) or set-based
    (`a in (x,y)`, `a notin (x,y)`, `!a`), with the API server's meaning for absent keys."""
    found = SET_TERM.match(term)
    if found:
        key, operator, values = found.groups()
        members = {v.strip() for v in values.split(",") if v.strip()}
        if operator == "in":
            return labels.get(key) in members
        return labels.get(key) not in members
    if term.startswith("!"):
        return term[1:].strip() not in labels
    if "!=" in term:
        key, value = (part.strip() for part in term.split("!=", 1))
        return labels.get(key) != value
    if "=" in term:
        key, value = (part.strip() for part in re.split(r"==?", term, maxsplit=1))
        return labels.get(key) == value
    return term in labels


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Every term of the selector holds (terms are ANDed, as on a real server)."""
    return all(_term_matches(term, labels) for term in _selector_terms(selector))


@attrs.define(kw_only=True)
class KubeApiDouble(kmock.KubernetesEmulator):
    """kmock's emulator with uid/resourceVersion/creationTimestamp, 201 on create, apply,
    label selectors and the status subresource."""

    server_version: tuple[int, int] = (1, 32)
    on_write: list[Callable[[str, dict[str, Any]], None]] = attrs.field(factory=list)
    """Hooks called after each create/update with (plural, object): they play controllers."""
    failures: dict[tuple[str, str], list[int]] = attrs.field(factory=dict)
    """(METHOD, path) → HTTP codes to answer with, one per request, before serving normally."""
    pod_logs: dict[tuple[str, str, str], str] = attrs.field(factory=dict)
    """(namespace, pod, container) → what the pods/log subresource answers (the kubelet's part)."""
    admission: list[Admission] = attrs.field(factory=list)
    """Checks every create and update runs before it is stored (over HTTP or by a stand-in)."""
    owners: dict[tuple[Any, str | None, str], dict[str, set[ssa.Path]]] = attrs.field(
        factory=dict)
    """Field ownership per object and manager, from server-side applies."""
    refused: list[tuple[str, str]] = attrs.field(factory=list)
    """(namespace/pod, message) for each pod creation a stand-in controller had refused."""
    after_request: list[Callable[[], None]] = attrs.field(factory=list)
    """Called after each request is served: controllers that act later than the write that
    triggered them (a real controller's watch and sync take time) do their work here."""
    tokens: dict[str, str] = attrs.field(factory=dict)
    """Bearer token -> the user it authenticates (a service account's token as the API server
    knows it); a request with such a token is authorized by RBAC (rbac.py). A request with no
    token is the admin's, as kind's kubeconfig user; an unknown token is 401."""
    _versions: Iterator[int] = attrs.field(factory=lambda: itertools.count(1000), init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # The kubernetes client asks for /version/ (trailing slash); a real server answers both.
        self.fallback["get", re.compile(r"/version/?")] << self._serve_server_version

    async def _serve_server_version(self, request: rendering.Request) -> rendering.Payload:
        major, minor = self.server_version
        return {"major": str(major), "minor": str(minor), "gitVersion": f"v{major}.{minor}.0",
                "buildDate": "2025-01-01T00:00:00Z", "compiler": "gc", "gitCommit": "0" * 40,
                "gitTreeState": "clean", "goVersion": "go1.23", "platform": "linux/amd64"}

    def _stamp(self, meta: dict[str, Any], *, new: bool) -> None:
        meta["resourceVersion"] = str(next(self._versions))
        if new:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = datetime.datetime.now(datetime.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            meta.setdefault("generation", 1)

    def _exists(self, request: rendering.Request) -> bool:
        key = (request.resource, request.namespace, request.name)
        return key in self.objects and not self.objects[key].deleted

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        try:
            return await self._serve_request(request)
        finally:
            for hook in list(self.after_request):
                hook()

    async def _serve_request(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        scripted = self.failures.get((str(request.method.value), request.url.path))
        if scripted:
            code = scripted.pop(0)
            return self._status(code, f"scripted failure {code}")
        refused = self._authorize(request)
        if refused is not None:
            return refused
        if request.resource is not None and request.resource.plural == "pods" and \
                request.subresource == "log":
            return self._serve_pod_log(request)
        if request.resource is None or not isinstance(request.data, dict):
            return await super()._handle(request)
        if request.action == enums.action.UPDATE and \
                request.headers.get("Content-Type", "").startswith(APPLY_PATCH):
            return await self._serve_apply(request)
        data = request.data
        meta = data.setdefault("metadata", {})
        if request.action in (enums.action.CREATE, enums.action.UPDATE) and \
                request.subresource != "status":
            name = request.name or meta.get("name")
            namespace = request.namespace or meta.get("namespace")
            old = self.get(self._group_version(request), request.resource.plural, namespace,
                           name) if name else None
            new = copy.deepcopy(data) if request.action == enums.action.CREATE or old is None \
                else dicts.patch_dict(copy.deepcopy(old), data)
            try:
                self.admit(Write(self._group_version(request), request.resource.plural,
                                 namespace, new, None if request.action == enums.action.CREATE
                                 else old))
            except Denied as denied:
                return self._status(denied.code, denied.message)
        if request.action == enums.action.CREATE:
            if request.namespace:
                meta["namespace"] = request.namespace
            self._stamp(meta, new=True)
            data.pop("status", None)
        elif request.action == enums.action.UPDATE:
            if request.subresource == "status":
                # The status subresource changes only status.
                for key in list(data):
                    if key not in ("status", "metadata"):
                        del data[key]
            else:
                data.pop("status", None)
            if self._exists(request):
                old_obj = self.objects[request.resource, request.namespace, request.name]
                for key in ("uid", "creationTimestamp"):
                    meta[key] = old_obj.get("metadata", {}).get(key)
            self._stamp(meta, new=False)
        elif request.action == enums.action.DELETE:
            self.owners.pop((request.resource, request.namespace, request.name), None)
        response = await super()._handle(request)
        if request.action == enums.action.CREATE and response.status == 200:
            response.set_status(201)
        if request.action in (enums.action.CREATE, enums.action.UPDATE) and response.status < 300:
            name = meta.get("name") or request.name
            key = (request.resource, request.namespace or meta.get("namespace"), name)
            for hook in self.on_write:
                hook(request.resource.plural, self.objects[key].raw)
        return response

    def _authorize(self, request: rendering.Request) -> aiohttp.web.StreamResponse | None:
        """401 for a token the double does not know; for a known one, 403 unless RBAC allows
        the request (rbac.py). Discovery and /version are every user's (system:discovery)."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        user = self.tokens.get(header.removeprefix("Bearer ").strip())
        if user is None:
            return self._status(401, "Unauthorized")
        if request.resource is None or not request.resource.plural:  # discovery
            return None
        ask = rbac.Attributes(
            user, rbac.verb_of(str(request.method.value), request.name, request.params),
            request.resource.group or "", request.resource.plural, request.subresource or "",
            request.namespace or "", request.name or "")
        if rbac.allowed(self.get, self.listed, ask):
            return None
        return self._status(403, rbac.forbidden_message(ask))

    def listed(self, group_version: str, plural: str,
               namespace: str | None) -> list[dict[str, Any]]:
        """The stored objects of a kind, in one namespace (None: every one, or cluster-scoped)."""
        group, _, version = group_version.rpartition("/")
        resource = kmock.resource(group, version, plural)
        return [obj.raw for (res, ns, _), obj in list(self.objects.items())
                if res == resource and not obj.deleted and (namespace is None or ns == namespace)]

    @staticmethod
    def _group_version(request: rendering.Request) -> str:
        group, version = request.resource.group, request.resource.version
        return f"{group}/{version}" if group else version

    def admit(self, write: Write) -> None:
        """Run every admission check on a write; Denied when one refuses it."""
        for check in self.admission:
            check(self, write)

    async def _serve_apply(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        """Server-side apply (ssa.py): merge, ownership per manager, pruning, conflicts;
        admission sees the merged object, and a refused apply changes nothing."""
        manager = request.params.get("fieldManager")
        if not manager:  # a real server requires one on every apply
            return self._status(422, "PATCH /apply requires a fieldManager")
        applied = copy.deepcopy(request.data)
        applied.pop("status", None)  # status has its own subresource
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            live = self.objects[key].raw if self._exists(request) else None
            owners = copy.deepcopy(self.owners.get(key, {})) if live is not None else {}
            try:
                new = ssa.apply(live, applied, owners, manager,
                                force=request.params.get("force") == "true")
            except ssa.Conflict as conflict:
                return self._status(409, str(conflict))
            meta = new.setdefault("metadata", {})
            meta["name"] = request.name
            if request.namespace:
                meta["namespace"] = request.namespace
            try:
                self.admit(Write(self._group_version(request), request.resource.plural,
                                 request.namespace, new, live))
            except Denied as denied:
                return self._status(denied.code, denied.message)
            # metadata.managedFields as a real server reports them (kubernetes/apimachinery
            # v0.32 pkg/apis/meta/v1/types.go, ManagedFieldsEntry): one Apply entry per manager
            # owning fields; the field sets themselves are kept in `owners`.
            meta["managedFields"] = [
                {"manager": name, "operation": "Apply", "apiVersion": self._group_version(request),
                 "fieldsType": "FieldsV1", "fieldsV1": {}} for name in sorted(owners)]
            if live is None:
                self._stamp(meta, new=True)
                if key in self.objects:
                    self.objects[key].create(new)
                else:
                    self.objects[key] = new
            else:
                self._stamp(meta, new=False)
                self.objects[key].history.append(new)
            self.owners[key] = owners
            raw = self.objects[key].raw
            event = "ADDED" if live is None else "MODIFIED"
            await self._buses[request.resource].put({"type": event, "object": raw})
        for hook in self.on_write:
            hook(request.resource.plural, raw)
        return aiohttp.web.json_response(raw, status=201 if live is None else 200)

    def _serve_pod_log(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        """Plain text, as the kubelet serves it; 404 for a pod that does not exist and 400 for
        a container it does not have (a real server's answers)."""
        pod = self.get("v1", "pods", request.namespace, request.name)
        if pod is None:
            return self._status(404, f'pods "{request.name}" not found')
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = request.params.get("container") or (containers[0] if len(containers) == 1
                                                        else "")
        if container not in containers:
            return self._status(400, f"container {container!r} is not valid for pod "
                                     f"{request.name}")
        text = self.pod_logs.get((request.namespace, request.name, container), "")
        return aiohttp.web.Response(text=text, content_type="text/plain")

    @staticmethod
    def _status(code: int, message: str) -> aiohttp.web.StreamResponse:
        return aiohttp.web.json_response(
            {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code,
             "message": message, "metadata": {}}, status=code)

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        listed = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            listed["items"] = [
                item for item in listed["items"]
                if _selector_matches(selector, item.get("metadata", {}).get("labels") or {})
            ]
        listed["metadata"]["resourceVersion"] = str(next(self._versions))
        return listed

    def declare(self, group_version: str, plural: str, kind: str, *, namespaced: bool,
                status: bool = False) -> None:
        """Serve a resource in discovery (as a real server does for built-ins and CRDs)."""
        group, _, version = group_version.rpartition("/")
        key = f"{group}/{version}/{plural}" if group else f"{version}/{plural}"
        self.resources[key] = kmock.ResourceInfo(
            kind=kind, namespaced=namespaced, subresources={"status"} if status else set(),
            verbs={"get", "list", "create", "patch", "delete", "watch"})

    @property
    def log(self) -> list[rendering.Request]:
        """Every request served so far, in order."""
        return list(self._requests)

    # ---- helpers for tests (synchronous, thread-safe enough for the test thread) ----------

    def create(self, group_version: str, plural: str, obj: dict[str, Any], *,
               user: str = CLIENT_USER) -> None:
        """Create an object as a controller does, through admission (Denied if refused)."""
        meta = obj.get("metadata", {})
        self.admit(Write(group_version, plural, meta.get("namespace"), obj,
                         self.get(group_version, plural, meta.get("namespace"), meta["name"]),
                         user))
        self.put(group_version, plural, obj)

    def put(self, group_version: str, plural: str, obj: dict[str, Any]) -> None:
        """Store an object as the cluster's installed state, past admission."""
        group, _, version = group_version.rpartition("/")
        meta = obj.setdefault("metadata", {})
        self._stamp(meta, new=True)
        key = (kmock.resource(group, version, plural), meta.get("namespace"), meta["name"])
        self.objects[key] = copy.deepcopy(obj)

    def get(self, group_version: str, plural: str, namespace: str | None,
            name: str) -> dict[str, Any] | None:
        group, _, version = group_version.rpartition("/")
        key = (kmock.resource(group, version, plural), namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return self.objects[key].raw

    def set_status(self, group_version: str, plural: str, namespace: str | None, name: str,
                   status: dict[str, Any]) -> None:
        group, _, version = group_version.rpartition("/")
        key = (kmock.resource(group, version, plural), namespace, name)
        self.objects[key].patch({"status": status})


@contextmanager
def serve(double: KubeApiDouble) -> Iterator[str]:
    """Run the double on 127.0.0.1 in a thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None
    url: list[str] = []

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with double, kmock.Server(double) as server:
            url.append(str(server.url).rstrip("/"))
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the Kubernetes API double did not start")
    try:
        yield url[0]
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


CORE_RESOURCES = [
    ("v1", "namespaces", "Namespace", False),
    ("v1", "pods", "Pod", True),
    ("v1", "services", "Service", True),
    ("v1", "endpoints", "Endpoints", True),
    ("v1", "configmaps", "ConfigMap", True),
    ("v1", "secrets", "Secret", True),
    ("v1", "serviceaccounts", "ServiceAccount", True),
    ("v1", "events", "Event", True),
    ("v1", "nodes", "Node", False),
    ("v1", "persistentvolumeclaims", "PersistentVolumeClaim", True),
    ("apps/v1", "deployments", "Deployment", True),
    ("apps/v1", "daemonsets", "DaemonSet", True),
    ("apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", False),
    ("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations",
     "ValidatingWebhookConfiguration", False),
    ("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations",
     "MutatingWebhookConfiguration", False),
    ("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False),
    ("rbac.authorization.k8s.io/v1", "roles", "Role", True),
    ("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", True),
    ("node.k8s.io/v1", "runtimeclasses", "RuntimeClass", False),
]


def core_double(server_version: tuple[int, int] = (1, 32)) -> KubeApiDouble:
    """A double serving the built-in kinds kfbox touches."""
    double = KubeApiDouble(server_version=server_version)
    for group_version, plural, kind, namespaced in CORE_RESOURCES:
        double.declare(group_version, plural, kind, namespaced=namespaced, status=True)
    return double
