"""The tutorials an engine offers a person: the notebooks in one of its folders, and what running
each proves (that folder's checks.yaml: a requirement id and conditions on what it prints)."""

from __future__ import annotations

from pathlib import Path

import yaml

from kfbox.engines.base import Tutorial
from kfbox.engines.platform import StepFailure
from kfbox.host.errors import KfboxError
from kfbox.host.progress import Reporter

CHECKS = "checks.yaml"
RUNTIME_IMAGE_ENV = "KFBOX_RUNTIME_IMAGE"
"""Where every engine's notebook finds the ML runtime's image, which the tutorials' jobs and
model servers run (the kernel runs the same software)."""


def notebooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ipynb"))


def tutorial_checks(folder: Path) -> list[Tutorial]:
    """Each tutorial of `folder` with what running it proves."""
    checks = yaml.safe_load((folder / CHECKS).read_text())
    return [Tutorial(str(folder / name), entry["requirement"], entry["prints"])
            for name, entry in checks.items()]


def offer(url: str, token: str, folder: Path, dest: str, reporter: Reporter, *,
          fix: str) -> None:
    """The tutorials of FOLDER into DEST of the sandbox's notebook server at URL, where a person
    opens them; a copy a person edited is never replaced. A server that never answers or
    refuses them stops `up` in one line, with FIX (where to look)."""
    # Imported here for start-up time: the Jupyter client loads websocket, which only `up`
    # needs.
    from kfbox.engines.jupyter import JupyterClient

    with reporter.step("Tutorials in the notebook server", action="tutorials") as update:
        client = JupyterClient(url, token)
        try:
            client.wait_ready()
            offered = client.offer(notebooks(folder), dest)
        except StepFailure as exc:
            raise KfboxError(f"the sandbox notebook took no tutorials: {exc}", fix=fix) from exc
        update(", ".join(offered) if offered else "already there")
