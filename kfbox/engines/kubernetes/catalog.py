"""The component catalog: the lock's components, dependencies, platforms and install order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kfbox.host.errors import UsageError

LOCK_FILE = Path(__file__).with_name("components.lock.yaml")


@dataclass(frozen=True)
class Manifest:
    """One thing to apply: an upstream URL, an upstream kustomize target, or a builtin
    kfbox renders itself; `objects_sha256` (manifest_cache.objects_digest of its objects as rendered
    from upstream at the tag) None means not yet pinned."""

    url: str = ""
    kustomize: str = ""
    builtin: str = ""
    objects_sha256: str | None = None

    @property
    def source(self) -> str:
        return self.url or self.kustomize or f"builtin:{self.builtin}"


@dataclass(frozen=True)
class Readiness:
    crds: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()
    """namespace/name"""
    daemonsets: tuple[str, ...] = ()
    webhooks: tuple[str, ...] = ()
    """Webhook configuration names; ready when every backing Service has ready endpoints."""
    checks: tuple[str, ...] = ()
    """kfbox checks of the component's configuration, by name (readiness.CHECKS)."""


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    min_kubernetes: tuple[int, int]
    manifests: tuple[Manifest, ...]
    depends: tuple[str, ...] = ()
    ready: Readiness = field(default_factory=Readiness)
    gpu: bool = False
    kind_only: bool = False
    """Never installed into an existing cluster (it serves kind's registry or nodes)."""
    adjust: tuple[str, ...] = ()
    """Changes kfbox makes to the rendered objects before applying them (adjust.ADJUSTMENTS)."""
    image_configs: tuple[str, ...] = ()
    """namespace/name of ConfigMaps whose data names images the component starts."""
    image_settings: tuple[str, ...] = ()
    """Names whose values are images the component starts: a container's env variable, a
    container argument (`--flag`, its value the next argument or after `=`) or a ConfigMap
    data key (KFP's driver and launcher, Argo's executor)."""


@dataclass(frozen=True)
class Catalog:
    components: dict[str, Component]
    platforms: dict[str, tuple[str, ...]]
    """core and full: the components each Kubeflow platform installs."""

    def platform(self, name: str, *, gpu: bool, kind: bool = True) -> list[str]:
        """The platform's components; GPU-only ones only when the cluster has a GPU, kind-only
        ones only on a kind cluster kfbox made."""
        if name not in self.platforms:
            raise UsageError(f"unknown platform {name!r}; allowed: {', '.join(self.platforms)}")
        wanted = self.platforms[name]
        return [c for c in wanted if (gpu or not self.components[c].gpu)
                and (kind or not self.components[c].kind_only)]

    def plan(self, names: list[str]) -> list[Component]:
        """The named components and their dependencies, dependencies first (stable order)."""
        ordered: list[Component] = []
        visiting: set[str] = set()

        def visit(name: str, wanted_by: str) -> None:
            if name not in self.components:
                raise UsageError(f"unknown component {name!r} (wanted by {wanted_by}); "
                                 f"known: {', '.join(sorted(self.components))}")
            if any(c.name == name for c in ordered):
                return
            if name in visiting:
                raise UsageError(f"dependency cycle through component {name!r} in the lock file")
            visiting.add(name)
            for dep in self.components[name].depends:
                visit(dep, name)
            visiting.discard(name)
            ordered.append(self.components[name])

        for name in names:
            visit(name, "the request")
        return ordered


def _version(text: str) -> tuple[int, int]:
    major, minor = str(text).split(".")[:2]
    return int(major), int(minor)


def parse_lock(data: dict[str, Any]) -> Catalog:
    components = {}
    for name, raw in data["components"].items():
        ready = raw.get("ready") or {}
        components[name] = Component(
            name=name,
            version=str(raw["version"]),
            min_kubernetes=_version(raw["min_kubernetes"]),
            manifests=tuple(Manifest(**m) for m in raw["manifests"]),
            depends=tuple(raw.get("depends") or ()),
            ready=Readiness(**{k: tuple(v) for k, v in ready.items()}),
            gpu=bool(raw.get("gpu", False)),
            kind_only=bool(raw.get("kind_only", False)),
            adjust=tuple(raw.get("adjust") or ()),
            image_configs=tuple(raw.get("image_configs") or ()),
            image_settings=tuple(raw.get("image_settings") or ()),
        )
    platforms = {name: tuple(items) for name, items in data["platforms"].items()}
    return Catalog(components, platforms)


def load_catalog(path: Path = LOCK_FILE) -> Catalog:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read the component lock {str(path)!r}: {exc}") from exc
    return parse_lock(data)


def lock_data(catalog: Catalog, pins: dict[str, str]) -> dict[str, Any]:
    """The catalog as lock-file data with every pinned hash filled in (for bundles)."""
    components: dict[str, Any] = {}
    for comp in catalog.components.values():
        manifests = []
        for m in comp.manifests:
            entry: dict[str, Any] = {k: v for k, v in (("url", m.url), ("kustomize", m.kustomize),
                                                        ("builtin", m.builtin)) if v}
            if not m.builtin:
                entry["objects_sha256"] = m.objects_sha256 or pins.get(m.source)
            manifests.append(entry)
        ready = {k: list(getattr(comp.ready, k)) for k in ("crds", "deployments", "daemonsets",
                                                           "webhooks", "checks")
                 if getattr(comp.ready, k)}
        components[comp.name] = {
            "version": comp.version,
            "min_kubernetes": f"{comp.min_kubernetes[0]}.{comp.min_kubernetes[1]}",
            "depends": list(comp.depends), "manifests": manifests, "ready": ready,
            "gpu": comp.gpu, "kind_only": comp.kind_only, "adjust": list(comp.adjust),
            "image_configs": list(comp.image_configs),
            "image_settings": list(comp.image_settings),
        }
    return {"schema": 1, "components": components,
            "platforms": {k: list(v) for k, v in catalog.platforms.items()}}
