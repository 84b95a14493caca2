"""The component installer: version gates, server-side apply in dependency order (one field
manager per component, so two components declaring one object never prune each other's
fields), kfbox's adjustments to upstream objects, readiness."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
    wait_fixed,
)

from kfbox.engines.kubernetes import readiness
from kfbox.engines.kubernetes.adjust import ADJUSTMENTS
from kfbox.engines.kubernetes.catalog import Component, Readiness
from kfbox.engines.kubernetes.kubeapi import FIELD_MANAGER, KubeApi, KubeError
from kfbox.engines.kubernetes.manifest_cache import ManifestCache, parse_objects
from kfbox.host.errors import KfboxError, PreflightError
from kfbox.host.progress import Reporter

# 404: a kind whose CRD was just created is not discoverable yet; 500: a webhook whose pod is
# starting; the rest are the API server being busy or restarting.
TRANSIENT_STATUSES = {0, 404, 409, 429, 500, 502, 503, 504}
FIRST = ("Namespace", "CustomResourceDefinition")
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
"""Applied after the component's workloads run: a webhook configuration whose Service has no
ready endpoint makes the API server refuse what it guards (failurePolicy Fail, the default),
and Katib v0.19.0's pod mutator guards every pod of the namespace its own controller runs in."""

Builtins = dict[str, Callable[[], list[dict[str, Any]]]]


@dataclass
class InstallResult:
    component: str
    version: str
    objects: int
    seconds: float
    """Time from the first apply to the last readiness gate passing."""
    left: list[str] = field(default_factory=list)
    """One line per object kfbox left alone because another field manager owns it."""


def owner(live: dict[str, Any]) -> str | None:
    """Who manages a live object when kfbox does not: its first field manager (status
    subresource entries aside), or "an unrecorded manager" when it has none; None when one of
    kfbox's own managers (`kfbox`, `kfbox/<component>`) is among them."""
    managers = [entry.get("manager", "") for entry in
                (live.get("metadata") or {}).get("managedFields") or []
                if not entry.get("subresource")]
    if any(m == FIELD_MANAGER or m.startswith(f"{FIELD_MANAGER}/") for m in managers):
        return None
    return managers[0] if managers else "an unrecorded manager"


def describe(obj: dict[str, Any]) -> str:
    """`Kind namespace/name` (or `Kind name` when cluster-scoped)."""
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind', '')} {where}{meta.get('name', '')}"


def apply_order(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Namespaces, then CRDs, then everything else in manifest order, webhook configurations
    last."""
    rank = {kind: i for i, kind in enumerate(FIRST)}
    last = len(FIRST) + 1
    return sorted(objects, key=lambda o: last if o.get("kind") in WEBHOOK_KINDS
                  else rank.get(o.get("kind", ""), len(FIRST)))


def workloads_only(ready: Readiness) -> Readiness:
    """The gates a component's webhook configurations wait for: its CRDs, Deployments and
    DaemonSets (the pods that serve its webhooks)."""
    return Readiness(crds=ready.crds, deployments=ready.deployments, daemonsets=ready.daemonsets)


def field_manager(comp: Component) -> str:
    return f"{FIELD_MANAGER}/{comp.name}"


def check_versions(plan: list[Component], server: tuple[int, int]) -> None:
    """PreflightError naming the first component the cluster is too old for."""
    for comp in plan:
        if server < comp.min_kubernetes:
            need = ".".join(map(str, comp.min_kubernetes))
            raise PreflightError(
                f"component {comp.name} {comp.version} needs Kubernetes >= {need}; "
                f"the cluster runs {server[0]}.{server[1]}",
                fix=f"upgrade the cluster to {need} or later, or leave {comp.name} out",
            )


@dataclass
class Installer:
    kube: KubeApi
    manifests: ManifestCache
    builtins: Builtins
    reporter: Reporter
    ready_timeout_s: float = 600
    poll_s: float = 2
    apply_budget_s: float = 120

    def render(self, comp: Component) -> list[dict[str, Any]]:
        """Every object of the component as kfbox applies it: verified bytes only, with the
        lock's adjustments made (nothing applied yet)."""
        objects: list[dict[str, Any]] = []
        for manifest in comp.manifests:
            if manifest.builtin:
                objects.extend(self.builtins[manifest.builtin]())
            else:
                objects.extend(parse_objects(self.manifests.read(manifest)))
        for name in comp.adjust:
            objects = ADJUSTMENTS[name](objects)
        return objects

    def install(self, plan: list[Component],
                rendered: dict[str, list[dict[str, Any]]] | None = None) -> list[InstallResult]:
        """Install each component in order, verifying every manifest before applying any
        (`rendered`: components already rendered, by name)."""
        check_versions(plan, self.kube.server_version())
        rendered = {comp.name: (rendered or {}).get(comp.name) or self.render(comp)
                    for comp in plan}
        results = []
        for comp in plan:
            with self.reporter.step(f"Installing {comp.name} {comp.version}") as update:
                started = time.monotonic()
                objects = rendered[comp.name]
                crds = [o["metadata"]["name"] for o in objects
                        if o.get("kind") == "CustomResourceDefinition"]
                hooks = [o for o in objects if o.get("kind") in WEBHOOK_KINDS]
                left = self._apply_all(comp, [o for o in objects if o not in hooks], update)
                if hooks:
                    # Its webhooks' pods first: behind a configuration whose Service has no
                    # ready endpoint, the API server refuses what the webhook guards (Katib's
                    # pod mutator: every pod of `kubeflow`, its own controller's included).
                    update("waiting for its workloads before its webhooks")
                    self.wait_ready(comp, crds, workloads_only(comp.ready))
                    left += self._apply_all(comp, hooks, update)
                update("waiting for readiness")
                self.wait_ready(comp, crds)
                results.append(InstallResult(comp.name, comp.version, len(rendered[comp.name]),
                                             time.monotonic() - started, left))
            for line in left:
                self.reporter.warn(line)
        return results

    def foreign(self, obj: dict[str, Any]) -> str | None:
        """The field manager of `obj` in the cluster when it exists and is not kfbox's."""
        meta = obj.get("metadata") or {}
        try:
            live = self.kube.get(obj["apiVersion"], obj["kind"], meta["name"],
                                 meta.get("namespace"))
        except KubeError as exc:
            if exc.status == 400:  # a namespaced kind without a namespace: applied as is
                return None
            raise
        return owner(live) if live is not None else None

    def _apply_all(self, comp: Component, objects: list[dict[str, Any]],
                   update: Callable[[str], None]) -> list[str]:
        """Apply every object kfbox may; the lines naming the ones another manager owns
        (a forced apply would take their fields from the cluster's owner)."""
        ordered = apply_order(objects)
        left = []
        for i, obj in enumerate(ordered, 1):
            update(f"{i}/{len(ordered)} {obj['kind']} {obj['metadata'].get('name', '')}")
            if (who := self.foreign(obj)) is not None:
                left.append(f"{describe(obj)} is managed by {who}: kfbox left it as it is")
                continue
            self._apply(comp, obj)
        return left

    def _apply(self, comp: Component, obj: dict[str, Any]) -> None:
        retrying = Retrying(
            retry=retry_if_exception(
                lambda e: isinstance(e, KubeError) and e.status in TRANSIENT_STATUSES),
            stop=stop_after_delay(self.apply_budget_s),
            wait=wait_exponential(multiplier=self.poll_s / 4, max=self.poll_s * 4),
            reraise=True,
        )
        try:
            retrying(self.kube.apply, obj, manager=field_manager(comp))
        except KubeError as exc:
            what = f"{obj['kind']} {obj['metadata'].get('name', '')}"
            raise KfboxError(f"{comp.name}: applying {what} failed: {exc}",
                             fix="see `kubectl get events -A`; rerun `kfbox up` to resume") from exc

    def wait_ready(self, comp: Component, crds: Sequence[str] = (),
                   gates: Readiness | None = None) -> None:
        """Until the component's readiness gates (or `gates`) pass; KfboxError naming what is
        pending."""
        retrying = Retrying(
            retry=retry_if_result(bool),
            stop=stop_after_delay(self.ready_timeout_s),
            wait=wait_fixed(self.poll_s),
        )
        try:
            retrying(readiness.pending, self.kube, gates or comp.ready, crds)
        except RetryError as exc:
            waiting = exc.last_attempt.result()
            raise KfboxError(
                f"{comp.name} not ready after {self.ready_timeout_s:.0f}s; waiting for "
                + ", ".join(waiting[:3]) + (" ..." if len(waiting) > 3 else ""),
                fix="`kfbox status` and `kubectl get pods -A` show why; rerun `kfbox up` to resume",
            ) from None
