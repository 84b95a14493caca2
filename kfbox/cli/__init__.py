"""The `kfbox` command: global options, one-line errors, and the command groups."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape

from kfbox import __version__
from kfbox.cli import bench, bundle, certify, journey, lifecycle, workshop
from kfbox.cli.console import err, out
from kfbox.host.errors import KfboxError
from kfbox.host.imports import skip_unused_optional_imports

if TYPE_CHECKING:
    from kfbox.host.config import SandboxSpec

app = typer.Typer(
    name="kfbox",
    help="A local ML platform sandbox, and the Critical User Journey as a conformance suite.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass
class Globals:
    name: str | None
    config: Path | None

    def spec(self, **overrides: Any) -> SandboxSpec:
        """The sandbox spec from kfbox.yaml (or --config) and these flag overrides."""
        # Imported here for start-up time: the spec is pydantic and YAML, which `--help` and
        # `--version` never read.
        from kfbox.host.config import load_spec

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
    for module in (lifecycle, journey, certify, bundle, bench, workshop):
        module.register(app)


def run() -> None:
    """The `kfbox` program (its console script): main, in a process that skips the optional
    imports no kfbox command uses."""
    skip_unused_optional_imports()
    main()


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
    except Exception as exc:
        # An engine error no step turned into a KfboxError. Only the commands that talk to the
        # engine import the Docker SDK (start-up time), so an error of its type means it is
        # loaded; looking it up in sys.modules keeps `--help` from importing it.
        docker_errors = sys.modules.get("docker.errors")
        if docker_errors is None or not isinstance(exc, docker_errors.DockerException):
            raise
        from kfbox.host.docker_engine import describe

        _fail(describe(exc), 1)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(line: str, exit_code: int) -> NoReturn:
    # The line reaches the user verbatim: '[kmg]' in it is text, not terminal markup.
    err.print(f"[red]error:[/] {escape(line)}", soft_wrap=True)
    sys.exit(exit_code)
