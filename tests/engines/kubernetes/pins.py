"""The digest a lock pins for one of the double's fixture manifests, as kfbox computes it."""

from __future__ import annotations

from pathlib import Path

from kfbox.engines.kubernetes.manifest_cache import objects_digest

FIXTURES = Path(__file__).parent / "fixtures"


def sha(name: str) -> str:
    """The objects digest (manifest_cache.objects_digest) of fixtures/NAME."""
    return objects_digest((FIXTURES / name).read_bytes())
