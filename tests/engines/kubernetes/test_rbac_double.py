"""The double's RBAC (rbac.py) decides as kubernetes v1.32's authorizer does on the cases the
notebook's tests rely on: a RoleBinding to a ClusterRole grants in its own namespace only, a
rule on a resource does not cover its subresources, resourceNames narrow a rule, wildcards
match, a group subject covers every service account, and verbs come from the request."""

from __future__ import annotations

import pytest
from rbac import RBAC_API, Attributes, allowed, verb_of

USER = "system:serviceaccount:team:nb"


def store(*objects: dict) -> tuple:
    kept = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
            for o in objects}
    kinds = {"roles": "Role", "clusterroles": "ClusterRole", "rolebindings": "RoleBinding",
             "clusterrolebindings": "ClusterRoleBinding"}

    def get(api, plural, namespace, name):
        return kept.get((kinds[plural], namespace, name))

    def listed(api, plural, namespace):
        return [o for (kind, ns, _), o in kept.items()
                if kind == kinds[plural] and (namespace is None or ns == namespace)]

    return get, listed


def role(kind: str, name: str, rules: list, namespace: str | None = None) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC_API, "kind": kind, "metadata": meta, "rules": rules}


def binding(kind: str, name: str, role_kind: str, role_name: str, subjects: list,
            namespace: str | None = None) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC_API, "kind": kind, "metadata": meta,
            "roleRef": {"kind": role_kind, "name": role_name}, "subjects": subjects}


NB = [{"kind": "ServiceAccount", "name": "nb", "namespace": "team"}]
PODS = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]


def ask(verb: str, resource: str = "pods", namespace: str = "team", sub: str = "",
        name: str = "", group: str = "", user: str = USER) -> Attributes:
    return Attributes(user, verb, group, resource, sub, namespace, name)


def test_a_cluster_role_bound_in_a_namespace_grants_there_only() -> None:
    get, listed = store(role("ClusterRole", "reader", PODS),
                        binding("RoleBinding", "b", "ClusterRole", "reader", NB, "team"))
    assert allowed(get, listed, ask("list"))
    assert not allowed(get, listed, ask("list", namespace="other"))
    assert not allowed(get, listed, ask("create"))


def test_subresources_resource_names_and_wildcards() -> None:
    rules = [*PODS, {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                     "resourceNames": ["public"]},
             {"apiGroups": ["x.io"], "resources": ["*"], "verbs": ["*"]}]
    get, listed = store(role("Role", "r", rules, "team"),
                        binding("RoleBinding", "b", "Role", "r", NB, "team"))
    assert not allowed(get, listed, ask("get", sub="log", name="p"))  # pods is not pods/log
    assert not allowed(get, listed, ask("create", sub="exec", name="p"))
    assert allowed(get, listed, ask("get", "configmaps", name="public"))
    assert not allowed(get, listed, ask("get", "configmaps", name="private"))
    assert allowed(get, listed, ask("delete", "anything", group="x.io"))
    assert not allowed(get, listed, ask("get", "pods", user="system:serviceaccount:team:other"))


def test_group_subjects_cover_service_accounts() -> None:
    get, listed = store(role("ClusterRole", "reader", PODS),
                        binding("ClusterRoleBinding", "all", "ClusterRole", "reader",
                                [{"kind": "Group", "name": "system:serviceaccounts:team"}]))
    assert allowed(get, listed, ask("get", namespace="anywhere", name="p"))
    assert not allowed(get, listed, ask("get", user="system:serviceaccount:else:nb"))


@pytest.mark.parametrize(("method", "name", "params", "verb"), [
    ("GET", "p", {}, "get"), ("GET", None, {}, "list"), ("GET", None, {"watch": "true"}, "watch"),
    ("POST", None, {}, "create"), ("PUT", "p", {}, "update"), ("PATCH", "p", {}, "patch"),
    ("DELETE", "p", {}, "delete"), ("DELETE", None, {}, "deletecollection"),
])
def test_the_verb_comes_from_the_request(method, name, params, verb) -> None:
    assert verb_of(method, name, params) == verb
