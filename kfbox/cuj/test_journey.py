"""The Critical User Journey, one test per step, in order: notebook → build → train → tune → serve.

After a failed step the later ones are reported as blocked by it (the kfbox plugin does that).
"""

from __future__ import annotations

import pytest

from kfbox.scenarios.journey import STEP_FUNCTIONS, Journey


def run_step(journey: Journey, step: str) -> None:
    journey.metrics[step] = STEP_FUNCTIONS[step](journey)


@pytest.mark.step("notebook")
def test_notebook(journey: Journey) -> None:
    """The notebook runs in the sandbox's notebook server and writes the training code."""
    run_step(journey, "notebook")


@pytest.mark.step("build")
def test_build(journey: Journey) -> None:
    """The notebook's output builds into an image pushed to the sandbox registry."""
    run_step(journey, "build")


@pytest.mark.step("train")
def test_train(journey: Journey) -> None:
    """The built image trains on the scenario's nodes and meets the accuracy threshold."""
    run_step(journey, "train")


@pytest.mark.step("tune")
def test_tune(journey: Journey) -> None:
    """The search's best trial meets the tuning threshold."""
    run_step(journey, "tune")


@pytest.mark.step("serve")
def test_serve(journey: Journey) -> None:
    """The best model serves v1 and v2 answers equal to the model evaluated locally."""
    run_step(journey, "serve")
