"""The sandbox's lifecycle as every command runs it (the CLI, bench, a workshop): preflight,
`up` and `down`, each under the sandbox's lock, and the spec recorded or forgotten with it."""

from __future__ import annotations

from pathlib import Path

from kfbox.engines import get_engine
from kfbox.engines.base import Engine, SandboxStatus
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
    spec: SandboxSpec, reporter: Reporter, *, provision: bool, from_bundle: bool = False
) -> SandboxStatus:
    """Preflight, then create or repair the sandbox, holding its lock (a second `up` or a
    `down` of the same sandbox waits), and record the spec it was brought up with. With
    `from_bundle` on lite, spec.from_bundle is verified first and supplies the engine's
    packages and the images: nothing is built or fetched."""
    engine = get_engine(spec)
    with sandbox_lock(spec.name, "up", reporter):
        if from_bundle and spec.engine == "lite" and spec.from_bundle is not None:
            from kfbox.engines.lite.bundle_install import verified_bundle
            from kfbox.host.docker_engine import connect

            with verified_bundle(spec.from_bundle, reporter) as bundle:
                ensure_engine_ready(engine, reporter, provision=True, debs=bundle.debs)
                bundle.load_images(connect(), reporter)
                bundle.record(spec.name)
        else:
            # No progress line for preflight: when it fails, its one error line is all one
            # sees.
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
