"""The errors kfbox shows a user as one line, and the exit code each one maps to."""

from __future__ import annotations


class KfboxError(Exception):
    """A failure the user can act on: printed as one line, never as a traceback."""

    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix

    def line(self) -> str:
        text = str(self)
        return f"{text} — {self.fix}" if self.fix else text


class UsageError(KfboxError):
    """Bad input (a flag, a config key, a file): exit 2, nothing created."""

    exit_code = 2


class PreflightError(KfboxError):
    """The host cannot run the sandbox as asked (no engine, a port taken, too little memory)."""

    exit_code = 3


class Interrupted(KfboxError):
    """The user stopped the command (Ctrl-C): exit 130, as a shell reports SIGINT."""

    exit_code = 130
