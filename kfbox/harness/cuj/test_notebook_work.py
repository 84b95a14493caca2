"""A person's own work from the notebook (marker `notebook_work`, the person.* requirements): each
tutorial the engine offers (Engine.capabilities().tutorials) runs top to bottom in the sandbox's
own kernel, as a person would run it, and what it prints meets the tutorial's conditions; and the
kernel holds only its sandbox's engine, never the host's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kfbox.engines.base import Capabilities, Tutorial
from kfbox.engines.platform import StepFailure
from kfbox.harness.journey import judge_conditions, notebook_metrics
from kfbox.harness.requirements import NOTEBOOK_WORK, REQUIREMENTS
from kfbox.scenarios.scenario import Condition

pytestmark = pytest.mark.notebook_work
TIMEOUT_S = 900
NONE_OFFERED = "the sandbox offers the notebook no engine to start work on"
PROBE = """import os
sockets = [p for p in ("/var/run/docker.sock", "/run/docker.sock") if os.path.exists(p)]
print(f"host_engine_sockets={len(sockets)}")
host = os.environ.get("DOCKER_HOST", "")
print(f"own_engine={int(host.startswith('unix://') and os.path.exists(host[7:]))}")
first = open("/proc/self/uid_map").read().split()
print(f"root_is_host_root={int(first[:2] == ['0', '0'])}")
"""
"""Run in the kernel: which engine sockets it holds, and whom its root is on the host (a user
namespace maps it to an unprivileged uid; none leaves it the host's uid 0)."""


def probe_notebook() -> dict:
    """PROBE as a one-cell notebook (nbformat 4, written by hand: nbformat is a dev tool, and
    this suite runs wherever kfbox is installed)."""
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}},
            "cells": [{"cell_type": "code", "id": "probe", "metadata": {}, "execution_count": None,
                       "outputs": [], "source": PROBE}]}


@pytest.fixture(scope="module")
def capabilities(kfbox_engine) -> Capabilities:
    return kfbox_engine.capabilities()


def run(kfbox_platform, notebook: Path, folder: str) -> dict[str, float]:
    result = kfbox_platform.notebooks.execute(notebook, f"kfbox-notebook-work/{folder}",
                                              timeout_s=TIMEOUT_S)
    return notebook_metrics(result.executed)


BOUNDARY = "person.boundary"
TUTORIAL_REQUIREMENTS = [r.id for r in REQUIREMENTS.values()
                         if r.where == NOTEBOOK_WORK and r.id != BOUNDARY]
"""What a person does from the notebook: each is proved by running a tutorial."""


@pytest.mark.requirement(BOUNDARY)
def test_the_kernel_holds_only_its_sandboxs_engine(
    kfbox_platform, capabilities: Capabilities, kfbox_check, tmp_path: Path
) -> None:
    if not capabilities.tutorials:
        kfbox_check(False, f"{NONE_OFFERED} (lite: `lite.docker: rootless`)")
        return
    (tmp_path / "boundary.ipynb").write_text(json.dumps(probe_notebook()))
    found = run(kfbox_platform, tmp_path / "boundary.ipynb", "boundary")
    held = {name: int(found.get(name, -1))
            for name in ("host_engine_sockets", "own_engine", "root_is_host_root")}
    kfbox_check(held == {"host_engine_sockets": 0, "own_engine": 1, "root_is_host_root": 0},
                ", ".join(f"{name}={value}" for name, value in held.items()))


def _tutorial(capabilities: Capabilities, requirement: str) -> Tutorial | None:
    return next((t for t in capabilities.tutorials if t.requirement == requirement), None)


@pytest.mark.parametrize("requirement", [
    pytest.param(r, marks=pytest.mark.requirement(r), id=r)
    for r in TUTORIAL_REQUIREMENTS])
def test_a_tutorial_runs_in_the_sandboxs_kernel(
    kfbox_platform, capabilities: Capabilities, kfbox_check, requirement: str
) -> None:
    tutorial = _tutorial(capabilities, requirement)
    if tutorial is None:
        kfbox_check(False, f"{NONE_OFFERED}: no tutorial for {requirement}")
        return
    notebook = Path(tutorial.notebook)
    try:
        printed = run(kfbox_platform, notebook, notebook.stem)
    except StepFailure as exc:
        kfbox_check(False, f"{notebook.name}: {exc}")
        return
    conditions = [Condition.model_validate(c) for c in tutorial.prints]
    for passed, detail in judge_conditions(conditions, printed, notebook.name):
        kfbox_check(passed, detail)


def test_the_tutorial_checks_name_person_requirements(capabilities: Capabilities) -> None:
    """Each offered tutorial proves one of the person.* requirements (a typo would leave a
    requirement unchecked and the certificate would say so only as `not-run`)."""
    named = [t.requirement for t in capabilities.tutorials]
    assert all(r.startswith("person.") for r in named), named
    assert len(set(named)) == len(named), json.dumps(named)
