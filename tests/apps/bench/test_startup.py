"""The bench times the `kfbox` command as a person starts it: a fresh process each run, the
median kept, and a command that fails is one line naming it, not a figure."""

from __future__ import annotations

import pytest

from kfbox.apps.bench import startup
from kfbox.host.errors import KfboxError


def test_the_command_is_the_kfbox_a_person_runs():
    command = startup.kfbox_command()
    assert command[0].endswith("kfbox") or "from kfbox.cli import run" in command[-1]


def test_a_start_is_timed_over_fresh_processes():
    assert 0 < startup.start_s(["--help"], runs=1) < 60


def test_a_command_that_fails_is_one_line_naming_it():
    with pytest.raises(KfboxError) as failed:
        startup.start_s(["--no-such-option"], runs=1)
    assert "`kfbox --no-such-option` exited 2" in str(failed.value)
    assert "\n" not in str(failed.value)
