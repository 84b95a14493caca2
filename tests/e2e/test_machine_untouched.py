"""The last test of a session (under bin/run-tests, a session of its own after the e2e streams,
against a snapshot taken before them): the test command was a good guest. The machine's Docker
engine is the same process it was before the first test (the fault tests stop, kill and fill an
engine of the suite's own, tests/support/suite_engine.py), a container of the person's that has
nothing to do with kfbox still runs, the sandbox `kfbox` (if one was up) has its token,
containers and images, and nothing else of the person's is gone or changed
(tests/support/machine.py says what counts)."""

from __future__ import annotations

import pytest

from tests.support import machine
from tests.support.ci import unreachable

pytestmark = pytest.mark.e2e


def test_the_machine_is_as_the_person_left_it(request: pytest.FixtureRequest) -> None:
    before = request.config.stash.get(machine.BEFORE, None)
    assert before is not None, "tests/e2e/conftest.py took no snapshot before the session"
    if isinstance(before, str):
        unreachable(before)
    try:
        assert machine.changes(before) == []
    finally:
        machine.remove_guard(before)
