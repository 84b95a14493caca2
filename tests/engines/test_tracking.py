"""The tracking seam's MLflow side without a server: MLflow's own client against a port where
nothing listens fails in one line naming the server and the fix, and runs recorded several at
a time make their experiment once. The real server is tests/e2e/test_journey_lite.py's."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from kfbox.engines.platform import StepFailure, TrackedRun
from kfbox.engines.tracking import MlflowTracking
from tests.support.net import free_port


def test_a_server_that_does_not_answer_is_one_line_naming_it_and_the_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    tracking = MlflowTracking(url, "kfbox", "secret", "tracking")
    with pytest.raises(StepFailure) as failed:
        tracking.record(TrackedRun("digits", "run", {"lr": "0.1"}, {"accuracy": [0.9]}))
    line = str(failed.value)
    assert line.startswith(f"the tracking server at {url} could not find an experiment: ")
    assert line.endswith("run `kfbox up` to start it again if it stopped")
    assert "\n" not in line and "secret" not in line


class SlowServer:
    """MLflow's client as the tracking seam calls it, answering after a pause: two runs
    recorded at once both ask for the experiment before either made it."""

    def __init__(self) -> None:
        self.experiments: dict[str, str] = {}
        self.created = 0
        self.runs = 0
        self.guard = threading.Lock()

    def get_experiment_by_name(self, name: str):
        threading.Event().wait(0.05)
        found = self.experiments.get(name)
        return SimpleNamespace(experiment_id=found) if found else None

    def create_experiment(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        with self.guard:
            if name in self.experiments:
                raise MlflowException("exists", error_code="RESOURCE_ALREADY_EXISTS")
            self.created += 1
            self.experiments[name] = str(self.created)
            return self.experiments[name]

    def create_run(self, experiment_id: str, **_: object):
        with self.guard:
            self.runs += 1
            return SimpleNamespace(info=SimpleNamespace(run_id=f"run-{self.runs}"))

    def log_batch(self, *_: object, **__: object) -> None: ...

    def set_terminated(self, *_: object, **__: object) -> None: ...


def test_runs_recorded_at_once_make_their_experiment_once() -> None:
    tracking = MlflowTracking("http://127.0.0.1:1", "kfbox", "secret", "tracking")
    server = SlowServer()
    tracking._client = server
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(tracking.record, [TrackedRun("digits", f"r{i}", {}, {})
                                              for i in range(4)]))
    assert server.created == 1 and sorted(ids) == [f"run-{i}" for i in range(1, 5)]
