"""Progress for long work: an ordered list of actions, each reporting its own status (like kind)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape


@dataclass
class StepTiming:
    """One finished step: `action` names what it did in words that never change (a program
    reads it: bench, `up`'s result), `name` is the line a person read."""

    name: str
    seconds: float
    ok: bool
    action: str = ""


@dataclass
class Reporter:
    """Prints one line per step with a spinner while it runs; quiet mode prints nothing
    (for --json output), but timings are always recorded."""

    quiet: bool = False
    console: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))
    timings: list[StepTiming] = field(default_factory=list)
    spinner: bool = True
    """False for steps that run beside another's spinner (one live display at a time)."""

    def beside(self) -> Reporter:
        """A reporter for work running at the same time as this one's: plain lines, no
        spinner, the same console and timings."""
        return Reporter(quiet=self.quiet, console=self.console, timings=self.timings,
                        spinner=False)

    @contextmanager
    def step(self, title: str, *, action: str = "") -> Iterator[Callable[[str], None]]:
        """Run a step; the yielded callable updates its detail text ("layer 3/7"). `action`
        is its stable name (the title when not given)."""
        started = time.monotonic()
        status = None
        if not self.quiet and self.spinner and self.console.is_terminal:
            status = self.console.status(f" {escape(title)} ...")
            status.start()
        elif not self.quiet:  # a log (CI, a pipe): say what started, not only what ended
            self.console.print(f" · {escape(title)} ...")

        def update(detail: str) -> None:
            if status is not None:
                status.update(f" {escape(title)} ... {escape(detail)}")

        ok = False
        try:
            yield update
            ok = True
        finally:
            if status is not None:
                status.stop()
            seconds = time.monotonic() - started
            self.timings.append(StepTiming(title, seconds, ok, action or title))
            if not self.quiet:
                mark = "[green]✓[/]" if ok else "[red]✗[/]"
                self.console.print(f" {mark} {escape(title)} [dim]({seconds:.1f}s)[/]")

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"   {escape(message)}")

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f" [yellow]![/] {escape(message)}")


def quiet_reporter() -> Reporter:
    return Reporter(quiet=True, console=Console(file=sys.stderr))
