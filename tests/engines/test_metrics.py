"""Katib-style metric lines: `name=value`, the last value of each name wins."""

import pytest

from kfbox.engines.metrics import parse_metrics

# Tests that need no engine never read or write the user's real kfbox state.
pytestmark = pytest.mark.usefixtures("kfbox_home")


def test_last_value_wins_and_pairs_share_lines() -> None:
    text = "epoch=1 loss=0.52\naccuracy=0.91\nepoch=2 loss=0.31\naccuracy=0.97\n"
    assert parse_metrics(text) == {"epoch": 2.0, "loss": 0.31, "accuracy": 0.97}


def test_exponents_signs_and_noise() -> None:
    text = "lr=1e-3 delta=-0.5\nrunning with --hidden=64\nname=abc\nvalue = 2.5\n"
    assert parse_metrics(text) == {"lr": 0.001, "delta": -0.5, "value": 2.5}


def test_no_metrics() -> None:
    assert parse_metrics("Traceback (most recent call last):\nValueError: x\n") == {}
