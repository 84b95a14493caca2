"""The journey suites' parametrization: one journey per profile, each marked with its profile."""

from __future__ import annotations

import pytest

from kfbox.sandbox.report.profiles import JOURNEY_PROFILES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrizing the module-scoped `journey` fixture makes pytest run each profile's steps
    # together and in order; the marks let `-m core` pick one profile's journey.
    if "journey" in metafunc.fixturenames:
        metafunc.parametrize(
            "journey",
            [pytest.param(p, marks=getattr(pytest.mark, p), id=p) for p in JOURNEY_PROFILES],
            indirect=True,
            scope="module",
        )
