"""A person's own work from the notebook (marker `notebook_work`, the person.* requirements): each
tutorial the engine offers (Engine.capabilities().tutorials) runs top to bottom in the sandbox's
own kernel, as a person would run it, and what it prints meets the tutorial's conditions; and the
engine's boundary probe, run there, finds the kernel held by its sandbox's boundary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kfbox.engines.base import Capabilities, Tutorial
from kfbox.engines.jupyter import one_cell_notebook
from kfbox.engines.platform import StepFailure
from kfbox.harness.journey import judge_conditions, notebook_metrics
from kfbox.harness.requirements import NOTEBOOK_WORK, REQUIREMENTS
from kfbox.scenarios.scenario import Condition

pytestmark = pytest.mark.notebook_work
TIMEOUT_S = 900
NONE_OFFERED = "the sandbox offers the notebook no engine to start work on"


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
def test_the_kernel_is_held_by_its_sandboxs_boundary(
    kfbox_platform, capabilities: Capabilities, kfbox_check, tmp_path: Path
) -> None:
    """The engine's boundary probe (Capabilities.boundary) run in the kernel: what it prints
    meets the probe's conditions (lite: only its own engine's socket, root not the host's;
    Kubernetes: each escape through the API refused with the notebook's own credentials)."""
    probe = capabilities.boundary
    if probe is None:
        kfbox_check(False, f"{NONE_OFFERED} (lite: `lite.docker: rootless`)")
        return
    (tmp_path / "boundary.ipynb").write_text(json.dumps(one_cell_notebook(probe.source)))
    found = run(kfbox_platform, tmp_path / "boundary.ipynb", "boundary")
    conditions = [Condition.model_validate(c) for c in probe.prints]
    for passed, detail in judge_conditions(conditions, found, "the boundary probe"):
        kfbox_check(passed, detail)


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
