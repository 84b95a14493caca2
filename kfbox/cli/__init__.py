"""The `kfbox` command: global options, one-line errors, and the command groups."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from docker.errors import DockerException
from rich.console import Console
from rich.markup import escape

from kfbox import __version__
from kfbox.host.config import SandboxSpec, load_spec
from kfbox.host.errors import KfboxError

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
    from kfbox.cli import bench, bundle, certify, journey, lifecycle, workshop

    for module in (lifecycle, journey, certify, bundle, bench, workshop):
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure the user can act on is one line on stderr and an exit code:
    a KfboxError its own, bad usage (an unknown option, a missing value) 2, Ctrl-C 130 (typer
    turns KeyboardInterrupt into Exit(130)), an engine error no step wrapped 1."""
    _register()
    try:
        code = app(args=argv, prog_name="kfbox", standalone_mode=False)
    except typer.TyperException as exc:  # its own usage panel is a box of lines: one instead
        context = getattr(exc, "ctx", None)  # a usage error knows its command, most of them
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if exc.exit_code == 2:
            message += f" — see `{context.command_path if context else 'kfbox'} --help`"
        _fail(message, exc.exit_code)
    except typer.Abort:
        _fail("interrupted", 130)
    except KfboxError as exc:
        _fail(exc.line(), exc.exit_code)
    except DockerException as exc:  # an engine error no step turned into a KfboxError
        from kfbox.host.docker_engine import describe

        _fail(describe(exc), 1)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(line: str, exit_code: int) -> NoReturn:
    # The line reaches the user verbatim: '[kmg]' in it is text, not terminal markup.
    err.print(f"[red]error:[/] {escape(line)}", soft_wrap=True)
    sys.exit(exit_code)
