"""The journey suites' parametrization: one journey per scenario variant, marked with it, and
only the steps that variant runs (`steps_for`)."""

from __future__ import annotations

import pytest

from kfbox.harness.requirements import steps_for
from kfbox.scenarios.scenario import VARIANTS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrizing the plugin's module-scoped `kfbox_journey` fixture makes pytest run each
    # variant's steps together and in order; the marks let `-m core` pick one variant's journey.
    if "kfbox_journey" in metafunc.fixturenames:
        metafunc.parametrize(
            "kfbox_journey",
            [pytest.param(v, marks=getattr(pytest.mark, v), id=v) for v in VARIANTS],
            indirect=True,
            scope="module",
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A step outside its variant's journey is no test at all (deselected, never a skip): the
    # steps are parametrized once, in order, and the variants' journeys differ in length.
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        outside = "step" in params and "kfbox_journey" in params and (
            params["step"] not in steps_for(params["kfbox_journey"]))
        (dropped if outside else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
