"""`kfbox doctor|provision|up|status|down`: the sandbox's lifecycle."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kfbox.cli.console import err, out
from kfbox.host.errors import UsageError
from kfbox.host.progress import Reporter

if TYPE_CHECKING:
    from kfbox.engines.base import Engine, SandboxStatus
    from kfbox.host.config import SandboxSpec

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
ListenFlag = Annotated[
    str | None,
    typer.Option(
        help="Host address for the notebook and model servers: an address of this host, or "
        "0.0.0.0 for all (default: 127.0.0.1); tokens stay on"
    ),
]


def parse_ports(values: list[str] | None) -> dict[str, Any]:
    """`--port jupyter=9999` → {'ports.jupyter': 9999}; a malformed value is a UsageError."""
    overrides: dict[str, Any] = {}
    for value in values or []:
        key, sep, number = value.partition("=")
        if not sep or not number.isdigit():
            raise UsageError(f"--port {value!r} is not COMPONENT=NUMBER; e.g. --port jupyter=9999")
        overrides[f"ports.{key}"] = int(number)
    return overrides


def refuse_listen(spec: SandboxSpec) -> None:
    """--listen beyond loopback is for an engine that declares it can publish there; any other
    would leave it unread (the address lives in the lite block)."""
    # Imported here for start-up time: the engines load the Docker SDK.
    from kfbox.engines import engine_class
    from kfbox.host.config import LOOPBACK

    address = spec.lite.listen
    if address != LOOPBACK and not engine_class(spec.engine).features.listen:
        raise UsageError(
            f"listen {address!r} is supported by the lite engine only; the {spec.engine} "
            "engine publishes on 127.0.0.1",
            fix="drop --listen, or use --engine lite",
        )


def token_protected(engine: Engine, status: SandboxStatus) -> list[str]:
    """The components a person opens with a token (their login URL carries it)."""
    return [c.name for c in status.components if c.url and engine.login_url(c.name)]


# Each command imports the engines (the Docker SDK) and the tables (the spec's pydantic) in its
# body, for start-up time: `kfbox --help` loads every command module and needs neither.
def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(ctx: typer.Context, as_json: JsonFlag = False) -> None:
        """Check the host: Docker engine, memory, disk, CPU, ports, inotify, GPU, CA bundle."""
        # Imported here for start-up time (see the note above register).
        from kfbox.cli.render import checks_table, print_json
        from kfbox.engines import get_engine
        from kfbox.engines.lifecycle import failures

        spec = ctx.obj.spec()
        checks = get_engine(spec).preflight()
        if as_json:
            print_json(out, [c.__dict__ for c in checks])
        else:
            out.print(checks_table(checks))
        if failures(checks):
            raise typer.Exit(1)

    @app.command()
    def provision(
        ctx: typer.Context,
        gpu: Annotated[
            str | None, typer.Option(help="auto|on|off: install the NVIDIA toolkit")
        ] = None,
    ) -> None:
        """Install and start the Docker engine (and the NVIDIA toolkit when a GPU is present)
        with the host playbook (ansible-runner). Idempotent."""
        # Imported here for start-up time: ansible-runner.
        from kfbox.host.provision.runner import provision_host

        spec = ctx.obj.spec(gpu=gpu)
        result = provision_host(Reporter(), gpu=spec.gpu)
        changed = ", ".join(f"{t.role}: {t.task}" for t in result.changed_tasks()) or "nothing"
        err.print(
            f"provisioned in {result.seconds:.0f}s; changed: {changed} (log: {result.artifacts})",
            soft_wrap=True,
        )

    @app.command()
    def up(
        ctx: typer.Context,
        engine: Annotated[str | None, typer.Option(help="lite | kind | existing")] = None,
        gpu: Annotated[str | None, typer.Option(help="auto | on | off")] = None,
        port: Annotated[list[str] | None, typer.Option(help="COMPONENT=PORT")] = None,
        listen: ListenFlag = None,
        ca_bundle: Annotated[
            Path | None, typer.Option(help="PEM bundle to trust in images")
        ] = None,
        kubeconfig: Annotated[
            Path | None, typer.Option(help="Cluster for --engine existing")
        ] = None,
        nodes: Annotated[int | None, typer.Option(help="kind nodes")] = None,
        from_bundle: Annotated[
            Path | None,
            typer.Option(help="Install from an offline bundle: lite, its .tar (installs the "
                         "engine if missing, loads the images); kind, its folder"),
        ] = None,
        platform: Annotated[
            str | None, typer.Option(help="kind/existing: the Kubeflow platform, core | full")
        ] = None,
        trust_on_first_use: Annotated[
            bool | None,
            typer.Option(help="kind/existing: pin unpinned manifests from this download"),
        ] = None,
        provision: Annotated[
            bool, typer.Option(help="Install the Docker engine if missing")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Bring the sandbox up (or repair it): preflight, images, components, readiness."""
        # Imported here for start-up time (see the note above register).
        from kfbox.cli.render import print_json, print_status
        from kfbox.engines import get_engine
        from kfbox.engines.lifecycle import bring_up

        spec = ctx.obj.spec(
            engine=engine,
            gpu=gpu,
            ca_bundle=ca_bundle,
            from_bundle=from_bundle,
            **{"kubernetes.kubeconfig": kubeconfig, "kubernetes.nodes": nodes,
               "kubernetes.platform": platform,
               "kubernetes.trust_on_first_use": trust_on_first_use, "lite.listen": listen},
            **parse_ports(port),
        )
        if listen is not None:
            refuse_listen(spec)
        reporter = Reporter(quiet=as_json)
        result = bring_up(spec, reporter, provision=provision, from_bundle=bool(from_bundle))
        status = result.status
        if as_json:  # the sandbox as it stands, and each step `up` ran, named and timed
            print_json(out, {**status.to_dict(), "steps": [asdict(s) for s in result.steps]})
        else:
            print_status(out, status, needs_token=token_protected(get_engine(spec), status))

    @app.command()
    def status(
        ctx: typer.Context,
        as_json: JsonFlag = False,
        show_token: Annotated[bool, typer.Option(help="Show URLs with their tokens")] = False,
    ) -> None:
        """Each component, its health and URL (tokens masked unless --show-token)."""
        # Imported here for start-up time (see the note above register).
        from kfbox.cli.render import print_json, print_status
        from kfbox.engines import get_engine

        engine = get_engine(ctx.obj.spec())
        current = engine.status()
        logins = {}
        if show_token:
            logins = {c.name: engine.login_url(c.name) or c.url for c in current.components}
        if as_json:
            data = current.to_dict()
            for comp in data["components"]:
                comp["url"] = logins.get(comp["name"], comp["url"])
            print_json(out, data)
        else:
            print_status(out, current, logins, needs_token=token_protected(engine, current))
        if current.state != "running":
            raise typer.Exit(1)

    @app.command()
    def down(
        ctx: typer.Context,
        keep_data: Annotated[
            bool, typer.Option(help="Keep the workspace and model volumes")
        ] = False,
    ) -> None:
        """Remove everything the sandbox created, then verify nothing labelled is left."""
        # Imported here for start-up time (see the note above register).
        from kfbox.engines import get_engine
        from kfbox.engines.lifecycle import take_down

        left = take_down(get_engine(ctx.obj.spec()), Reporter(), keep_data=keep_data)
        if left:
            err.print(f"[red]still present:[/] {', '.join(left)}")
            raise typer.Exit(1)
