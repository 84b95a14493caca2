"""Manifest bytes: downloaded once, checked against the lock's sha256, cached for offline reuse."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from kfbox.engines.kubernetes.catalog import Manifest
from kfbox.engines.kubernetes.tools import CommandFailed, Tools
from kfbox.host.errors import KfboxError, UsageError

PINS_FILE = "pins.yaml"
DOWNLOAD_TIMEOUT_S = 120


class ManifestRefused(KfboxError):
    """A manifest whose bytes are not the pinned ones (or that is not pinned at all)."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ManifestStore:
    """Where manifest bytes come from. `cache` holds files named by their sha256 and a pins
    file (source → sha256) for hashes learned on first use; `offline` (a bundle's manifest
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
        return manifest.sha256 or self.pins().get(manifest.source)

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
                f"{manifest.source} has no pinned sha256 in the lock (its sha256 is "
                f"{sha256_of(data)})",
                fix="review it, then rerun with --trust-on-first-use to pin that hash",
            )
        else:
            expected = sha256_of(data)
            self._record_pin(manifest.source, expected)
        (self.cache / f"{expected}.yaml").write_bytes(data)
        return data

    @staticmethod
    def _verified(data: bytes, manifest: Manifest, expected: str) -> bytes:
        actual = sha256_of(data)
        if actual != expected:
            raise ManifestRefused(
                f"{manifest.source}: sha256 {actual} differs from the lock's {expected}",
                fix="refusing to apply it; delete the cached copy or update the lock deliberately",
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
