"""The sandbox's lifecycle as every command runs it (the CLI, bench, a workshop): preflight,
`up` and `down`, each under the sandbox's lock, and the spec recorded or forgotten with it."""

from __future__ import annotations

from kfbox.sandbox.config import SandboxSpec, forget_sandbox, record_spec
from kfbox.sandbox.engines import get_engine
from kfbox.sandbox.engines.base import Check, Engine, SandboxStatus
from kfbox.sandbox.errors import PreflightError
from kfbox.sandbox.locks import sandbox_lock
from kfbox.sandbox.progress import Reporter


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == "fail"]


def ensure_engine_ready(engine: Engine, reporter: Reporter, *, provision: bool) -> list[Check]:
    """Preflight; with `provision`, install the Docker engine first when it is missing.
    Raises PreflightError naming the first failing check and its fix; creates nothing."""
    checks = engine.preflight()
    if provision and any(c.name == "docker engine" for c in failures(checks)):
        from kfbox.sandbox.provision.runner import provision_host

        provision_host(reporter, gpu=engine.spec.gpu)
        checks = engine.preflight()
    failed = failures(checks)
    if failed:
        first = failed[0]
        raise PreflightError(f"preflight: {first.name}: {first.detail}", fix=first.fix)
    for check in checks:
        if check.status == "warn":
            reporter.warn(
                f"{check.name}: {check.detail}" + (f" ({check.fix})" if check.fix else "")
            )
    return checks


def bring_up(spec: SandboxSpec, reporter: Reporter, *, provision: bool) -> SandboxStatus:
    """Preflight, then create or repair the sandbox, holding its lock (a second `up` or a
    `down` of the same sandbox waits), and record the spec it was brought up with."""
    engine = get_engine(spec)
    with sandbox_lock(spec.name, "up", reporter):
        # No progress line for preflight: when it fails, its one error line is all one sees.
        ensure_engine_ready(engine, reporter, provision=provision)
        status = engine.up(reporter)
        record_spec(spec)
    return status


def take_down(engine: Engine, reporter: Reporter, *, keep_data: bool) -> list[str]:
    """Remove the sandbox, holding its lock; what is still left (empty on success)."""
    with sandbox_lock(engine.spec.name, "down", reporter):
        left = engine.down(reporter, keep_data=keep_data)
        if not keep_data:
            forget_sandbox(engine.spec.name)
    return left
