"""Manifest bytes: downloaded (or rendered) once, their objects checked against the lock's
digest, cached for offline reuse.

The digest is of the objects, not of the bytes: the sha256 of the JSON of the list of parsed
objects, each with sorted keys, the list sorted by apiVersion, kind, namespace and name. So a
kustomize target rendered by another kustomize version (other quoting, order, indentation)
has the digest the lock records, while any changed value, added or removed object does not."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from kfbox.engines.kubernetes.catalog import Manifest
from kfbox.engines.kubernetes.tools import CommandFailed, Tools
from kfbox.host.errors import KfboxError, UsageError

PINS_FILE = "pins.yaml"
DOWNLOAD_TIMEOUT_S = 120


class ManifestRefused(KfboxError):
    """A manifest whose bytes are not the pinned ones (or that is not pinned at all)."""


def parse_objects(data: bytes) -> list[dict[str, Any]]:
    """Every object in a multi-document manifest (List kinds expanded, empty docs dropped)."""
    objects: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(data):
        if not doc:
            continue
        if doc.get("kind", "").endswith("List") and "items" in doc:
            objects.extend(item for item in doc["items"] if item)
        else:
            objects.append(doc)
    return objects


def _identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("apiVersion", "")), str(obj.get("kind", "")),
            str(meta.get("namespace") or ""), str(meta.get("name", "")))


def objects_digest(data: bytes) -> str:
    """sha256 of the manifest's objects in canonical form (see the module's docstring)."""
    try:
        objects = sorted(parse_objects(data), key=_identity)
    except yaml.YAMLError as exc:
        raise ManifestRefused(f"the manifest is not YAML: {exc}") from exc
    canonical = json.dumps(objects, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class ManifestCache:
    """Where manifest bytes come from. `cache` holds files named by their objects' digest and
    a pins file (source → digest) for digests learned on first use; `offline` (a bundle's manifest
    folder) is the only source when set, so nothing is downloaded."""

    cache: Path
    tools: Tools
    trust_on_first_use: bool = False
    offline: Path | None = None

    def pins(self) -> dict[str, str]:
        path = self.cache / PINS_FILE
        return yaml.safe_load(path.read_text()) or {} if path.is_file() else {}

    def _record_pin(self, source: str, digest: str) -> None:
        pins = self.pins()
        pins[source] = digest
        (self.cache / PINS_FILE).write_text(yaml.safe_dump(pins, sort_keys=True))

    def expected(self, manifest: Manifest) -> str | None:
        return manifest.objects_sha256 or self.pins().get(manifest.source)

    def _stored(self, manifest: Manifest) -> Path | None:
        """The verified copy in the bundle or the cache, if either holds it."""
        expected = self.expected(manifest)
        for folder in (self.offline, self.cache):
            if expected and folder is not None and (folder / f"{expected}.yaml").is_file():
                return folder / f"{expected}.yaml"
        return None

    def available(self, manifest: Manifest) -> bool:
        """Whether reading the manifest needs no download (nor git, for kustomize)."""
        return self._stored(manifest) is not None

    def read(self, manifest: Manifest) -> bytes:
        """The verified bytes of a url/kustomize manifest; ManifestRefused when they do not
        match the pin, or when unpinned without trust-on-first-use."""
        expected = self.expected(manifest)
        stored = self._stored(manifest)
        if expected and stored is not None:
            return self._verified(stored.read_bytes(), manifest, expected)
        if self.offline is not None:
            raise UsageError(f"the bundle has no manifest for {manifest.source}",
                             fix="make the bundle again with `kfbox bundle` on a networked host")
        data = self._download(manifest)
        if expected:
            data = self._verified(data, manifest, expected)
        elif not self.trust_on_first_use:
            raise ManifestRefused(
                f"{manifest.source} has no pinned objects_sha256 in the lock (its objects' "
                f"digest is {objects_digest(data)})",
                fix="review it, then rerun with --trust-on-first-use to pin that digest",
            )
        else:
            expected = objects_digest(data)
            self._record_pin(manifest.source, expected)
        (self.cache / f"{expected}.yaml").write_bytes(data)
        return data

    @staticmethod
    def _verified(data: bytes, manifest: Manifest, expected: str) -> bytes:
        actual = objects_digest(data)
        if actual != expected:
            raise ManifestRefused(
                f"{manifest.source}: its objects' digest {actual} differs from the lock's "
                f"objects_sha256 {expected}; nothing was applied",
                fix="upstream changed what this pin names: review the difference, then pin the "
                    "new digest in components.lock.yaml deliberately (or delete a corrupt "
                    "cached copy in ~/.kfbox/cache/manifests)",
            )
        return data

    def _download(self, manifest: Manifest) -> bytes:
        if manifest.kustomize:
            try:
                return self.tools("kubectl", "kustomize", manifest.kustomize,
                                  timeout=DOWNLOAD_TIMEOUT_S * 3).stdout.encode()
            except CommandFailed as exc:
                raise KfboxError(f"cannot render {manifest.kustomize}: {exc}",
                                 fix="check network access to github.com and that git is "
                                     "installed (`kfbox doctor`), or install from a bundle "
                                     "(--from-bundle)") from exc
        try:
            response = requests.get(manifest.url, timeout=DOWNLOAD_TIMEOUT_S)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise KfboxError(f"cannot download {manifest.url}: {type(exc).__name__}",
                             fix="check network access, or install from a bundle "
                                 "(`kfbox bundle` elsewhere, then --from-bundle)") from exc
        return response.content
