"""The host commands the engine runs (kind, kubectl, docker, git): found, or how to get them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kfbox.host.errors import KfboxError, PreflightError

KIND_VERSION = "v0.32.0"
KUBECTL_VERSION = "v1.32.3"

INSTALL_HINTS = {
    "kind": (
        f"curl -Lo ./kind https://kind.sigs.k8s.io/dl/{KIND_VERSION}/kind-linux-amd64 && "
        "chmod +x ./kind && sudo mv ./kind /usr/local/bin/kind"
    ),
    "kubectl": (
        f"curl -LO https://dl.k8s.io/release/{KUBECTL_VERSION}/bin/linux/amd64/kubectl && "
        "sudo install -m 0755 kubectl /usr/local/bin/kubectl"
    ),
    "docker": "run `kfbox provision` to install and start the Docker engine",
    # kustomize (inside kubectl) clones a remote base's repository with git.
    "git": "sudo apt-get install -y git",
}


class CommandFailed(KfboxError):
    """A host command exited non-zero: one line naming the command, its exit code and the
    last line it printed (a KfboxError, so an uncaught one is printed, not a traceback)."""

    def __init__(self, argv: Sequence[str], code: int, output: str) -> None:
        lines = output.strip().splitlines()
        # argv[0] is the resolved path; its name and the subcommand say which call it was.
        command = " ".join([Path(argv[0]).name, *argv[1:3]]) if argv else "?"
        message = f"`{command}` failed (exit {code})"
        super().__init__(f"{message}: {lines[-1].strip()}" if lines else message)
        self.argv = list(argv)
        self.code = code
        self.output = output


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], *, stdin: str | None = None,
                 check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]: ...


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; CommandFailed (with its output) when `check`."""
    done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise CommandFailed(argv, done.returncode, done.stderr or done.stdout)
    return done


@dataclass
class Tools:
    """Resolves each tool once; a missing one is a PreflightError naming the install command."""

    runner: Runner = run
    which: dict[str, str | None] = field(default_factory=dict)

    def path(self, name: str) -> str:
        if name not in self.which:
            self.which[name] = shutil.which(name)
        found = self.which[name]
        if not found:
            raise PreflightError(f"`{name}` is not installed",
                                 fix=f"install it: {INSTALL_HINTS[name]}")
        return found

    def __call__(self, tool: str, *args: str, stdin: str | None = None, check: bool = True,
                 timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.runner([self.path(tool), *args], stdin=stdin, check=check, timeout=timeout)
