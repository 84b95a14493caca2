"""Engines: where the platform runs. `lite` (Docker only), `kind` and `existing` (Kubernetes)."""

from __future__ import annotations

from kfbox.engines.base import Engine
from kfbox.host.config import SandboxSpec


def get_engine(spec: SandboxSpec) -> Engine:
    """The engine's provider the spec names; imported lazily so `lite` never loads
    Kubernetes code."""
    if spec.engine == "lite":
        from kfbox.engines.lite.engine import LiteEngine

        return LiteEngine(spec)
    if spec.engine == "kind":
        from kfbox.engines.kubernetes.kind import KindEngine

        return KindEngine(spec)
    from kfbox.engines.kubernetes.existing import ExistingEngine

    return ExistingEngine(spec)
