"""RBAC authorization as the Kubernetes API server does it (kubernetes/kubernetes v1.32), for the
API double: a request made with a service account's token is allowed only when a Role or
ClusterRole bound to that account allows its verb on its resource; the double's other requests
are the cluster admin's (kind's kubeconfig user), as before.

Sources at v1.32: the request's verb and resource from
staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go (NewRequestInfo); the rules
walked by pkg/registry/rbac/validation/rule.go (VisitRulesFor: cluster role bindings, then the
request namespace's role bindings, a binding to a ClusterRole granting only in its namespace);
a rule matched by pkg/apis/rbac/v1/evaluation_helpers.go (VerbMatches, APIGroupMatches,
ResourceMatches with `resource/subresource`, ResourceNameMatches); a subject matched by
appliesToUser in rule.go (a ServiceAccount by namespace and name, and the groups every service
account is in: system:serviceaccounts, system:serviceaccounts:<namespace>,
system:authenticated); the refusal's text from
staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go (forbiddenMessage).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RBAC_API = "rbac.authorization.k8s.io/v1"
SERVICE_ACCOUNT_USER = "system:serviceaccount:"
Getter = Callable[[str, str, "str | None", str], "dict[str, Any] | None"]
"""(group/version, plural, namespace, name) -> the stored object or None"""
Lister = Callable[[str, str, "str | None"], "list[dict[str, Any]]"]
"""(group/version, plural, namespace) -> the stored objects there"""


@dataclass(frozen=True)
class Attributes:
    """What the authorizer is asked: who, which verb, on what."""

    user: str
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str

    @property
    def groups(self) -> set[str]:
        if not self.user.startswith(SERVICE_ACCOUNT_USER):
            return {"system:authenticated"}
        namespace = self.user[len(SERVICE_ACCOUNT_USER):].split(":")[0]
        return {"system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                "system:authenticated"}


def verb_of(method: str, name: str | None, params: Any) -> str:
    """requestinfo.go: GET and HEAD read one object (get), a collection (list) or a watch; the
    rest are create, update, patch, delete or deletecollection."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        if str(params.get("watch", "")).lower() in ("1", "true"):
            return "watch"
        return "get" if name else "list"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def _rule_allows(rule: dict[str, Any], ask: Attributes) -> bool:
    """evaluation_helpers.go RuleAllows for a resource request."""
    verbs, groups = rule.get("verbs") or [], rule.get("apiGroups") or []
    if not ("*" in verbs or ask.verb in verbs):
        return False
    if not ("*" in groups or ask.group in groups):
        return False
    combined = f"{ask.resource}/{ask.subresource}" if ask.subresource else ask.resource
    resources = rule.get("resources") or []
    if not any(r in ("*", combined) or (ask.subresource and r == f"*/{ask.subresource}")
               or (r == f"{ask.resource}/*" and ask.subresource) for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or ask.name in names


def _applies(subjects: list[dict[str, Any]], ask: Attributes, binding_namespace: str) -> bool:
    """rule.go appliesToUser: ServiceAccount subjects (their namespace defaulting to the
    binding's), Group subjects against the account's groups, User subjects by name."""
    for subject in subjects or []:
        kind = subject.get("kind")
        if kind == "ServiceAccount":
            namespace = subject.get("namespace") or binding_namespace
            if ask.user == f"{SERVICE_ACCOUNT_USER}{namespace}:{subject.get('name')}":
                return True
        elif (kind, subject.get("name")) in {("User", ask.user),
                                             *(("Group", g) for g in ask.groups)}:
            return True
    return False


def allowed(get: Getter, listed: Lister, ask: Attributes) -> bool:
    """rule.go VisitRulesFor: the rules of every ClusterRoleBinding's role, then of every
    RoleBinding in the request's namespace (a Role of that namespace, or a ClusterRole granting
    there only); true at the first rule that allows the request."""
    bindings = [(b, "") for b in listed(RBAC_API, "clusterrolebindings", None)]
    if ask.namespace:
        bindings += [(b, ask.namespace)
                     for b in listed(RBAC_API, "rolebindings", ask.namespace)]
    for binding, namespace in bindings:
        if not _applies(binding.get("subjects") or [], ask, namespace):
            continue
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "Role":
            role = get(RBAC_API, "roles", namespace, ref.get("name", ""))
        else:
            role = get(RBAC_API, "clusterroles", None, ref.get("name", ""))
        if any(_rule_allows(rule, ask) for rule in (role or {}).get("rules") or []):
            return True
    return False


def forbidden_message(ask: Attributes) -> str:
    """errors.go forbiddenMessage, with the authorizer's empty reason."""
    resource = f"{ask.resource}/{ask.subresource}" if ask.subresource else ask.resource
    what = f'{resource} "{ask.name}"' if ask.name else resource
    where = f' in the namespace "{ask.namespace}"' if ask.namespace else " at the cluster scope"
    return (f'{what} is forbidden: User "{ask.user}" cannot {ask.verb} resource '
            f'"{resource}" in API group "{ask.group}"{where}')
