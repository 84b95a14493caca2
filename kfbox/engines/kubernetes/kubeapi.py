"""A small Kubernetes REST client: discovery, server-side apply, get/list/delete any kind."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kfbox.host.errors import UsageError

FIELD_MANAGER = "kfbox"
REQUEST_TIMEOUT_S = 30


class KubeError(Exception):
    """The API server refused a request; `status` is its HTTP code (0: it never answered)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ResourceRef:
    plural: str
    namespaced: bool


def client_from_kubeconfig(path: Path | None, context: str | None = None) -> client.ApiClient:
    """An ApiClient for a kubeconfig (its current context unless one is named); UsageError
    when the file is missing or malformed."""
    if path is not None and not path.is_file():
        raise UsageError(f"kubeconfig {str(path)!r} does not exist",
                         fix="pass --kubeconfig PATH to a readable kubeconfig")
    if path is not None:
        _looks_like_a_kubeconfig(path)
    try:
        return config.new_client_from_config(config_file=str(path) if path else None,
                                             context=context)
    except (config.ConfigException, OSError, ValueError) as exc:
        where = str(path) if path else "the default kubeconfig"
        raise UsageError(f"kubeconfig {where!r} is not usable: {str(exc).splitlines()[0]}",
                         fix="check the file with `kubectl config view`") from exc


def _looks_like_a_kubeconfig(path: Path) -> None:
    """UsageError unless `path` is YAML with the sections a kubeconfig has: the client
    library's own loader fails on anything else with a traceback, not a reason."""
    fix = "give the kubeconfig of the cluster (`kubectl config view --raw` prints one)"
    try:
        data = yaml.safe_load(path.read_text(errors="replace"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"kubeconfig {str(path)!r} is not valid YAML{where}", fix=fix) from None
    except OSError as exc:
        raise UsageError(f"kubeconfig {str(path)!r} cannot be read ({exc.strerror})",
                         fix=fix) from None
    if not isinstance(data, dict) or not isinstance(data.get("clusters"), list):
        raise UsageError(f"kubeconfig {str(path)!r} is not a kubeconfig (no clusters: list)",
                         fix=fix)


@dataclass
class KubeApi:
    """Generic object access; kinds are resolved through API discovery, as kubectl does."""

    api: client.ApiClient
    _discovered: dict[str, dict[str, ResourceRef]] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    def _call(self, method: str, path: str, *, body: Any = None,
              query: list[tuple[str, str]] | None = None,
              content_type: str = "application/json", text: bool = False) -> Any:
        """The API's answer: JSON decoded, or the body as it came where `text` (a pod's log is
        plain text, and may well start with "[" or "{": `[W1203 ...] c10d` from torch)."""
        try:
            response = self.api.call_api(
                path, method, query_params=query or [], body=body,
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                auth_settings=["BearerToken"], _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_S,
            )[0]
        except ApiException as exc:
            raise KubeError(_reason(exc), exc.status or 0) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(f"no API server answers at {self.host}: {type(exc).__name__}") from exc
        body = response.data.decode() if response.data else ""
        if text:
            return body
        return json.loads(body) if body.strip().startswith(("{", "[")) else body

    def server_version(self) -> tuple[int, int]:
        info = self._call("GET", "/version")
        minor = "".join(ch for ch in str(info.get("minor", "0")) if ch.isdigit())
        return int(info.get("major", 0)), int(minor or 0)

    def resource(self, api_version: str, kind: str) -> ResourceRef:
        """Plural and scope of a kind; rediscovers once on a miss (CRDs arrive at runtime)."""
        for refresh in (False, True):
            if refresh or api_version not in self._discovered:
                self._discovered[api_version] = self._discover(api_version)
            if kind in self._discovered[api_version]:
                return self._discovered[api_version][kind]
        raise KubeError(f"the server does not serve {kind} in {api_version}", 404)

    def _discover(self, api_version: str) -> dict[str, ResourceRef]:
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        try:
            listing = self._call("GET", base)
        except KubeError as exc:
            if exc.status == 404:
                return {}
            raise
        return {
            item["kind"]: ResourceRef(item["name"], bool(item.get("namespaced")))
            for item in listing.get("resources", [])
            if "/" not in item["name"]
        }

    def path(self, api_version: str, kind: str, namespace: str | None = None,
             name: str | None = None, *, all_namespaces: bool = False) -> str:
        ref = self.resource(api_version, kind)
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if ref.namespaced and not all_namespaces:
            if not namespace:
                raise KubeError(f"{kind} {name or ''} needs a namespace", 400)
            base += f"/namespaces/{namespace}"
        base += f"/{ref.plural}"
        return f"{base}/{name}" if name else base

    def apply(self, obj: dict[str, Any], namespace: str | None = None, *,
              manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply (create or update): `manager` then owns exactly the fields `obj`
        sets, and fields it set before and `obj` leaves out are removed."""
        meta = obj.get("metadata", {})
        ns = meta.get("namespace") or namespace
        path = self.path(obj["apiVersion"], obj["kind"], ns, meta["name"])
        if ns and self.resource(obj["apiVersion"], obj["kind"]).namespaced:
            obj = {**obj, "metadata": {**meta, "namespace": ns}}
        return self._call("PATCH", path, body=obj,
                          query=[("fieldManager", manager), ("force", "true")],
                          content_type="application/apply-patch+yaml")

    def get(self, api_version: str, kind: str, name: str,
            namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self._call("GET", self.path(api_version, kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             selector: str | None = None, *, all_namespaces: bool = False
             ) -> list[dict[str, Any]]:
        query = [("labelSelector", selector)] if selector else []
        path = self.path(api_version, kind, namespace, all_namespaces=all_namespaces)
        return self._call("GET", path, query=query)["items"]

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete in the background; False when it was already gone."""
        try:
            self._call("DELETE", self.path(api_version, kind, namespace, name),
                       body={"propagationPolicy": "Background"})
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def pod_logs(self, name: str, namespace: str, container: str | None = None) -> str:
        query = [("container", container)] if container else []
        return self._call("GET", f"/api/v1/namespaces/{namespace}/pods/{name}/log",
                          query=query, text=True)


def refusal(exc: BaseException) -> str:
    """`exc` with the API server's own message when a client wrapped its refusal (the Kubeflow
    SDK raises "Failed to create TrainJob" from the ApiException that says why)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ApiException):
        cause = cause.__cause__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{text}: {_reason(cause)}" if cause is not None and cause is not exc else text


def _reason(exc: ApiException) -> str:
    """The API server's own message (Status.message), not the client's HTTP dump."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return str(body.get("message") or exc.reason or f"HTTP {exc.status}").splitlines()[0]
