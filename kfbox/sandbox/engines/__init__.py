"""Engines: where the platform runs. `lite` (Docker only) and `kubernetes` (kind, existing)."""

from __future__ import annotations

from kfbox.sandbox.config import SandboxSpec
from kfbox.sandbox.engines.base import Engine


def get_engine(spec: SandboxSpec) -> Engine:
    """The engine the spec names; imported lazily so `lite` never loads Kubernetes code."""
    if spec.engine == "lite":
        from kfbox.sandbox.engines.lite.engine import LiteEngine

        return LiteEngine(spec)
    from kfbox.sandbox.engines.kubernetes.engine import KubernetesEngine

    return KubernetesEngine(spec)
