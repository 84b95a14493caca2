"""The sandbox's lifecycle as every command runs it (the CLI, bench, a workshop): preflight,
`up` and `down`, each under the sandbox's lock, and the spec recorded or forgotten with it."""

from __future__ import annotations

from pathlib import Path

from kfbox.engines import get_engine
from kfbox.engines.base import Engine, UpResult
from kfbox.host.config import SandboxSpec, forget_sandbox, record_spec
from kfbox.host.errors import PreflightError
from kfbox.host.locks import sandbox_lock
from kfbox.host.preflight import Check
from kfbox.host.progress import Reporter


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == "fail"]


def ensure_engine_ready(
    engine: Engine, reporter: Reporter, *, provision: bool, debs: Path | None = None
) -> list[Check]:
    """Preflight; with `provision`, install the Docker engine first when it is missing (from
    the .deb files in `debs` when given, with no network). Raises PreflightError naming the
    first failing check and its fix; creates nothing."""
    checks = engine.preflight()
    if provision and any(c.name == "docker engine" for c in failures(checks)):
        # Imported here for start-up time: ansible-runner, needed only on a host to provision.
        from kfbox.host.provision.runner import provision_host

        provision_host(reporter, gpu=engine.spec.gpu, debs=debs)
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


def bring_up(
    spec: SandboxSpec, reporter: Reporter, *, provision: bool, from_bundle: bool = False,
    preflight: bool = True,
) -> UpResult:
    """Preflight, then create or repair the sandbox, holding its lock (a second `up` or a
    `down` of the same sandbox waits), and record the spec it was brought up with. With
    `from_bundle`, the engine installs from spec.from_bundle around preflight
    (Engine.installing_from_bundle: lite's .tar is verified first and supplies the Docker
    engine's packages and the images, nothing built or fetched). Without `preflight`, the
    caller ran the engine's checks already (a workshop checks every seat before the first is
    made)."""
    engine = get_engine(spec)
    first = len(reporter.timings)
    with sandbox_lock(spec.name, "up", reporter):
        if from_bundle and spec.from_bundle is not None:
            with engine.installing_from_bundle(spec.from_bundle, reporter) as debs:
                # Packages the bundle brings are installed whatever --provision says: the
                # machine has no other way to get them.
                ensure_engine_ready(engine, reporter, provision=provision or debs is not None,
                                    debs=debs)
        elif preflight:
            # No progress line for preflight: when it fails, its one error line is all one
            # sees.
            ensure_engine_ready(engine, reporter, provision=provision)
        status = engine.up(reporter)
        record_spec(spec)
    return UpResult(status, reporter.timings[first:])


def take_down(engine: Engine, reporter: Reporter, *, keep_data: bool) -> list[str]:
    """Remove the sandbox, holding its lock; what is still left (empty on success)."""
    with sandbox_lock(engine.spec.name, "down", reporter):
        left = engine.down(reporter, keep_data=keep_data)
        if not keep_data:
            forget_sandbox(engine.spec.name)
    return left
