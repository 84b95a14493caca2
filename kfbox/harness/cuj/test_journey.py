"""The Critical User Journey, one test per step, in order: notebook → build → train → tune → serve
→ pipeline (core's only: the steps a variant runs are `steps_for`, parametrized in conftest.py).

What each step does and the requirements it checks are in kfbox.harness.journey; after a failed
step the later ones are reported as blocked by it (the kfbox plugin does that).
"""

from __future__ import annotations

import pytest

from kfbox.harness.journey import Journey
from kfbox.harness.requirements import STEPS


@pytest.mark.parametrize("step", STEPS)
def test_step(kfbox_journey: Journey, step: str) -> None:
    kfbox_journey.run(step)
