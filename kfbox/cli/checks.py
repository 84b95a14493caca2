"""What a command checks before it runs anything: the scenario loads, the sandbox answers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kfbox.host.errors import KfboxError, PreflightError, UsageError

if TYPE_CHECKING:
    from kfbox.engines.base import Engine
    from kfbox.host.config import SandboxSpec


def scenario_option(scenario: str) -> None:
    """A broken scenario is bad input: say so in one line before anything runs."""
    # Imported here for start-up time: the loader is pydantic and YAML, and every command
    # module (so `kfbox --help`) imports this one.
    from kfbox.scenarios.scenario import load_scenario

    loaded = load_scenario(scenario)
    if loaded.pipeline:  # its own journey pipeline: compiled and checked now, on a stand-in image
        import tempfile

        from kfbox.harness.pipeline import check_scenario_pipeline

        with tempfile.TemporaryDirectory(prefix="kfbox-pipeline-check-") as folder:
            check_scenario_pipeline(loaded, Path(folder))


def require_running(spec: SandboxSpec) -> Engine:
    """The sandbox's engine when the sandbox answers and is healthy; else one line naming the
    sandbox and the fix (exit 3). A journey that cannot run is never a pass."""
    # Imported here for start-up time: the engines load the Docker SDK.
    from docker.errors import DockerException

    from kfbox.engines import get_engine

    engine = get_engine(spec)
    fix = "run `kfbox up`" + (f" (with --name {spec.name})" if spec.name != "kfbox" else "")
    try:
        status = engine.status()
    except UsageError:
        raise  # a bad kubeconfig or setting is the input's fault, not the sandbox's
    except (KfboxError, DockerException) as exc:
        detail = exc.line() if isinstance(exc, KfboxError) else str(exc).splitlines()[0]
        raise PreflightError(f"sandbox {spec.name!r} cannot be reached: {detail}") from None
    if status.state == "absent":
        raise PreflightError(f"sandbox {spec.name!r} does not exist", fix=fix)
    if status.state != "running":
        broken = ", ".join(c.name for c in status.components if not c.healthy)
        raise PreflightError(f"sandbox {spec.name!r} is {status.state} ({broken} unhealthy)",
                             fix=fix + " to repair it")
    return engine
