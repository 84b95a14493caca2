"""The journey suites' parametrization: one journey per scenario variant, marked with it."""

from __future__ import annotations

import pytest

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
