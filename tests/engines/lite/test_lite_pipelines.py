"""Reading a kfp.local run on lite without an engine: each task's state and time from kfp's own
log lines (their format at kfp 2.17.3, kfp/local/task_dispatcher.py and logging_utils.py, as a
real run prints them, iterations of a ParallelFor interleaved), and the one line naming why a
task failed. Runs on a real sandbox are in tests/e2e/test_journey_lite.py."""

from __future__ import annotations

import json
from pathlib import Path

from kfbox.engines.lite.pipelines import failure_cause, task_outputs, task_runs

RUN = """\
20:51:06.084 - INFO - Running pipeline: 'kfbox-digits'
--------------------------------------------------------------------------------
20:51:06.090 - INFO - Executing task 'trial'
20:51:06.090 - INFO - Streamed logs:

20:51:06.091 - INFO - Executing task 'trial'
20:51:06.091 - INFO - Streamed logs:

            accuracy=0.9733
20:51:11.229 - INFO - Task 'trial' finished with status SUCCESS
20:51:11.230 - INFO - Task 'trial' outputs:
    Output: {'accuracy': 0.9711}
20:51:11.273 - INFO - Task 'trial' finished with status SUCCESS
20:51:11.275 - INFO - Executing task 'train'
20:51:15.406 - INFO - Task 'train' finished with status SUCCESS
20:51:15.409 - INFO - Executing task 'best'
20:51:15.650 - INFO - Task 'best' finished with status SUCCESS
20:51:15.651 - INFO - Executing task 'gate'
            Traceback (most recent call last):
              File "/tmp/tmp.h51B2W08JA/ephemeral_component.py", line 19, in gate
                raise RuntimeError("quality gate: " + "; ".join(missed))
            RuntimeError: quality gate: accuracy=0.9689 (needs at_least 1.5, at_most None)
20:51:15.900 - ERROR - Task 'gate' finished with status FAILURE
20:51:15.900 - ERROR - Pipeline 'kfbox-digits' finished with status FAILURE.
"""


def test_each_task_run_in_start_order_with_its_state_and_time() -> None:
    runs = [(r.name, r.state, r.duration_s) for r in task_runs(RUN)]
    assert runs == [("trial", "SUCCESS", 5.139), ("trial", "SUCCESS", 5.182),
                    ("train", "SUCCESS", 4.131), ("best", "SUCCESS", 0.241),
                    ("gate", "FAILURE", 0.249)]


def test_a_task_whose_end_was_never_logged_stays_running() -> None:
    cut = RUN.split("20:51:11.229")[0]
    assert [(r.name, r.state, r.duration_s) for r in task_runs(cut)] == [
        ("trial", "RUNNING", None), ("trial", "RUNNING", None)]


def test_a_run_across_midnight_keeps_its_time() -> None:
    log = ("23:59:59.500 - INFO - Executing task 'train'\n"
           "00:00:01.000 - INFO - Task 'train' finished with status SUCCESS\n")
    assert task_runs(log)[0].duration_s == 1.5


def test_a_task_line_written_after_a_parallel_tasks_separator_still_counts() -> None:
    """kfp prints its separator in two writes (the dashes, then the newline): a parallel task's
    line can land between them, as a CI run's log showed."""
    log = ("16:34:52.775 - INFO - Task 'trial' finished with status SUCCESS\n"
           + "-" * 80 + "16:34:52.777 - INFO - Executing task 'trial'\n"
           "\n"
           "16:34:52.778 - INFO - Executing task 'trial'\n"
           "16:34:58.245 - INFO - Task 'trial' finished with status SUCCESS\n"
           "16:34:58.514 - INFO - Task 'trial' finished with status SUCCESS\n")
    assert [(r.name, r.state, r.duration_s) for r in task_runs(log)] == [
        ("trial", "SUCCESS", 5.468), ("trial", "SUCCESS", 5.736)]


def test_the_cause_of_a_failed_task_is_what_it_raised() -> None:
    assert failure_cause(RUN) == (
        "RuntimeError: quality gate: accuracy=0.9689 (needs at_least 1.5, at_most None)")
    assert failure_cause("nothing raised\nlast words\n") == "last words"


def test_each_tasks_outputs_by_its_place_in_the_run(tmp_path: Path) -> None:
    run = tmp_path / "kfbox-digits-2026-12-02-20-51-06-084370"
    for place, values in {"train": {"Output": {"accuracy": 0.97}},
                          "for-loop-1-iteration-1/trial": {"Output": {"accuracy": 0.98}},
                          "gate": {"Output": "passed: accuracy=0.98"}}.items():
        (run / place).mkdir(parents=True)
        (run / place / "executor_output.json").write_text(json.dumps(
            {"parameterValues": values, "artifacts": {}}))
    (run / "best").mkdir()  # a task that wrote nothing (it failed) has no entry
    assert task_outputs(tmp_path) == {
        "for-loop-1-iteration-1/trial": {"Output": {"accuracy": 0.98}},
        "gate": {"Output": "passed: accuracy=0.98"},
        "train": {"Output": {"accuracy": 0.97}}}
