"""Unit tests never read or write the user's real kfbox state."""

import pytest


@pytest.fixture(autouse=True)
def _private_kfbox_home(kfbox_home):
    return kfbox_home
