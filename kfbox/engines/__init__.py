"""Engines: where the platform runs. `lite` (Docker only), `kind` and `existing` (Kubernetes)."""

from __future__ import annotations

from kfbox.engines.base import Engine
from kfbox.host.config import SandboxSpec
from kfbox.host.errors import UsageError

ENGINES = ("lite", "kind", "existing")


def engine_class(name: str) -> type[Engine]:
    """The engine class `name` names, without making one, so a caller asks what it declares
    (`engine_class(spec.engine).features`); imported lazily so `lite` never loads Kubernetes
    code. UsageError for a name that is no engine."""
    # Imported here for start-up time: each engine loads only its own clients.
    if name == "lite":
        from kfbox.engines.lite.engine import LiteEngine

        return LiteEngine
    if name == "kind":
        from kfbox.engines.kubernetes.kind import KindEngine

        return KindEngine
    if name == "existing":
        from kfbox.engines.kubernetes.existing import ExistingEngine

        return ExistingEngine
    raise UsageError(f"no engine {name!r}", fix=f"give one of: {', '.join(ENGINES)}")


def get_engine(spec: SandboxSpec) -> Engine:
    """The engine the spec names."""
    return engine_class(spec.engine)(spec)
