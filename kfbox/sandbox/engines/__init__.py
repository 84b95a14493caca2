"""Engines: where the platform runs. `lite` (Docker only), `kind` and `existing` (Kubernetes)."""

from __future__ import annotations

from kfbox.sandbox.config import SandboxSpec
from kfbox.sandbox.engines.base import Engine


def get_engine(spec: SandboxSpec) -> Engine:
    """The engine's provider the spec names; imported lazily so `lite` never loads
    Kubernetes code."""
    if spec.engine == "lite":
        from kfbox.sandbox.engines.lite.engine import LiteEngine

        return LiteEngine(spec)
    if spec.engine == "kind":
        from kfbox.sandbox.engines.kubernetes.kind import KindEngine

        return KindEngine(spec)
    from kfbox.sandbox.engines.kubernetes.existing import ExistingEngine

    return ExistingEngine(spec)
