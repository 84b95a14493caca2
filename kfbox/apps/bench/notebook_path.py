"""A person's path from the notebook, timed beside the harness's: on a throwaway sandbox behind
the person's boundary (its own rootless engine, as `kfbox run` makes by default), the core
profile as `kfbox certify` runs it — the journey's steps driven from the host, then the five
tutorials in the sandbox's own kernel — and the ratio of the two, same run."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

from kfbox.apps.bench.figures import BenchRun
from kfbox.apps.bench.journey import passed_journey
from kfbox.apps.bench.sandboxes import bench_spec
from kfbox.engines import get_engine
from kfbox.engines.lifecycle import bring_up, take_down
from kfbox.harness.profiles import PROFILES
from kfbox.harness.runner import run_suite
from kfbox.host.progress import Reporter, quiet_reporter

TUTORIAL_TEST = "test_a_tutorial_runs_in_the_sandboxs_kernel"
"""The test that runs one tutorial in the kernel, one case per person.* requirement
(kfbox/harness/cuj/test_notebook_work.py); junit.xml times each case."""
NOT_THE_TUTORIALS_WORK = ("track",)
"""Journey steps the tutorials have no counterpart of: left out of the ratio's other side."""


def tutorial_times(junit_xml: Path) -> dict[str, float]:
    """Each tutorial's wall time in the kernel, by the requirement it proves, from junit.xml."""
    times = {}
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        name = case.get("name", "")
        if name.startswith(f"{TUTORIAL_TEST}[") and case.find("skipped") is None:
            times[name[len(TUTORIAL_TEST) + 1:-1]] = float(case.get("time", "0"))
    return times


def notebook_path_figures(run: BenchRun, work: Path, reporter: Reporter,
                          scenario: str = "digits") -> None:
    engine = get_engine(bench_spec("nbpath", docker="rootless"))
    log = work / "notebook-path.log"
    try:
        with reporter.step("A sandbox behind the person's boundary (its own rootless engine)"):
            started = time.monotonic()
            bring_up(engine.spec, quiet_reporter(), provision=False)
            run.add("rootless_up_s", time.monotonic() - started, "s",
                    "a new sandbox in a rootless engine of its own, the images copied in")
        with reporter.step("The core profile there: the journey's steps, then the tutorials in "
                           "the sandbox's kernel"), log.open("w") as output:
            outcome = run_suite(PROFILES["core"], work / "notebook-path", engine.spec,
                                scenario=scenario, output=output)
    finally:
        left = take_down(engine, quiet_reporter(), keep_data=False)
        if left:
            run.notes.append("left behind: " + ", ".join(left))
    journey = passed_journey(outcome, "the core profile on the rootless sandbox", log)
    tutorials = tutorial_times(outcome.junit_xml)
    for requirement, seconds in tutorials.items():
        run.add(f"tutorial_{requirement.removeprefix('person.')}_s", seconds, "s",
                f"the tutorial proving {requirement}, run in the sandbox's kernel")
    path_s = sum(tutorials.values())
    run.add("notebook_path_s", path_s, "s",
            f"the {len(tutorials)} tutorials one after another in the sandbox's kernel, as a "
            "person runs them")
    steps = [s for s in journey.steps if s.name not in NOT_THE_TUTORIALS_WORK]
    run.add("notebook_path_vs_steps_ratio", path_s / sum(s.duration_s for s in steps), "x",
            "the tutorials over the same run's journey steps driven from the host ("
            + ", ".join(s.name for s in steps) + ")")
