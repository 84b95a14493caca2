"""Whether this run is CI, and what a test does when it cannot reach what it needs."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unreachable(message: str) -> NoReturn:
    """A test of kfbox itself that cannot reach what it needs (a Docker engine, a browser, a
    tool) fails under CI=true and skips, saying why, elsewhere."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
