"""Server-side apply for the API double: merge, field ownership per manager, and pruning.

Upstream rule (kubernetes-sigs/structured-merge-diff v4.4.2, merge/update.go, Updater.Apply and
prune; the library the Kubernetes 1.32 API server applies with): the applied configuration is
merged into the live object, the applying manager then owns exactly the fields it applied, and
a field that manager owned before and left out this time is removed unless another manager
owns it. Applying a field another manager owns with a different value is a conflict (409)
unless the request forces it, which moves the ownership.

The double's simplification: lists are atomic values (a real server merges a list whose schema
names keys, e.g. containers by name, item by item). kfbox never applies one list from two
managers, so this is stricter than upstream, never looser.
"""

from __future__ import annotations

import copy
from typing import Any

Path = tuple[str, ...]
IDENTITY: set[Path] = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
"""Fields that name the object: every apply sends them, nobody's ownership removes them."""
SERVER_SET = {"uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"}


class Conflict(Exception):
    """Another manager owns a field this apply changes (HTTP 409 without force)."""


def leaf_paths(obj: dict[str, Any], prefix: Path = ()) -> dict[Path, Any]:
    """Every leaf field of an applied configuration (maps are walked, lists are leaves)."""
    leaves: dict[Path, Any] = {}
    for key, value in obj.items():
        path = (*prefix, key)
        if prefix == ("metadata",) and key in SERVER_SET:
            continue
        if isinstance(value, dict) and value:
            leaves.update(leaf_paths(value, path))
        else:
            leaves[path] = value
    return leaves


def _get(obj: dict[str, Any], path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _set(obj: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        obj = obj.setdefault(key, {})
    if value == {} and isinstance(obj.get(path[-1]), dict):
        return  # an empty map merges into the live one: it removes nothing by itself
    obj[path[-1]] = copy.deepcopy(value)


def _remove(obj: dict[str, Any], path: Path) -> None:
    """Remove a field, and the maps it leaves empty (nothing else holds them up)."""
    parents = [obj]
    for key in path[:-1]:
        if not isinstance(parents[-1].get(key), dict):
            return
        parents.append(parents[-1][key])
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth]:
            break
        parents[depth - 1].pop(path[depth - 1], None)


def apply(live: dict[str, Any] | None, applied: dict[str, Any],
          owners: dict[str, set[Path]], manager: str, *, force: bool) -> dict[str, Any]:
    """The object after `manager` applies `applied` to `live` (None: the object is new);
    `owners` (manager -> owned leaf paths) is updated in place."""
    result = copy.deepcopy(live) if live is not None else {}
    fields = {p: v for p, v in leaf_paths(applied).items() if p not in IDENTITY}
    for other, owned in owners.items():
        if other == manager:
            continue
        contested = {p for p in owned & fields.keys() if _get(result, p) != fields[p]}
        if contested and not force:
            names = ", ".join(".".join(p) for p in sorted(contested))
            raise Conflict(f"Apply failed with 1 conflict: conflict with \"{other}\": {names}")
        owned -= contested
    for path, value in fields.items():
        _set(result, path, value)
    for path, value in leaf_paths({k: applied[k] for k in ("apiVersion", "kind")
                                   if k in applied}).items():
        _set(result, path, value)
    kept = set(fields).union(*(o for m, o in owners.items() if m != manager))
    for path in owners.get(manager, set()) - kept:
        if not any(q[:len(path)] == path for q in kept):  # a map still holding kept fields
            _remove(result, path)
    owners[manager] = set(fields)
    return result
