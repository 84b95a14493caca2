"""The `kfbox` command: global options, one-line errors, and the command groups."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from docker.errors import DockerException
from rich.console import Console
from rich.markup import escape

from kfbox import __version__
from kfbox.sandbox.config import SandboxSpec, load_spec
from kfbox.sandbox.errors import KfboxError

app = typer.Typer(
    name="kfbox",
    help="A local ML platform sandbox, and the Critical User Journey as a conformance suite.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


@dataclass
class Globals:
    name: str | None
    config: Path | None

    def spec(self, **overrides: Any) -> SandboxSpec:
        """The sandbox spec from kfbox.yaml (or --config) and these flag overrides."""
        return load_spec(self.config, {"name": self.name, **overrides})


def _version(value: bool) -> None:
    if value:
        out.print(f"kfbox {__version__}")
        raise typer.Exit()


@app.callback()
def _globals(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Sandbox name; several can coexist. [default: kfbox]"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Sandbox spec file. [default: ./kfbox.yaml]"),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = Globals(name=name, config=config)


def _register() -> None:
    from kfbox.sandbox.cli import bench, certify, journey, kube, lifecycle

    for module in (lifecycle, journey, certify, kube, bench):
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every KfboxError becomes one line on stderr and its exit code; click
    (standalone) reports usage errors with exit 2 and turns typer.Exit into the exit code
    (Ctrl-C: 130, as typer turns KeyboardInterrupt into Exit(130))."""
    _register()
    try:
        app(args=argv, standalone_mode=True)
    except KfboxError as exc:
        # The line reaches the user verbatim: '[kmg]' in it is text, not terminal markup.
        err.print(f"[red]error:[/] {escape(exc.line())}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except DockerException as exc:  # an engine error no step turned into a KfboxError
        from kfbox.sandbox.docker_engine import describe

        err.print(f"[red]error:[/] {escape(describe(exc))}", soft_wrap=True)
        sys.exit(1)
