"""The person's path is timed from the core profile's own junit.xml: each tutorial's case, by
the requirement it proves; a tutorial that did not run (skipped) is not a time."""

from __future__ import annotations

from pathlib import Path

from kfbox.apps.bench.notebook_path import TUTORIAL_TEST, tutorial_times
from kfbox.harness import cuj


def test_each_tutorial_is_timed_by_the_requirement_it_proves(tmp_path: Path):
    junit = tmp_path / "junit.xml"
    junit.write_text(f"""<testsuites><testsuite name="pytest">
<testcase classname="test_journey" name="test_step[core-train]" time="10.6" />
<testcase classname="test_notebook_work" name="{TUTORIAL_TEST}[person.trains]" time="16.39" />
<testcase classname="test_notebook_work" name="{TUTORIAL_TEST}[person.tunes]" time="15.75" />
<testcase classname="test_notebook_work" name="{TUTORIAL_TEST}[person.serves]" time="7.8">
<skipped message="no engine" /></testcase>
<testcase classname="test_notebook_work" name="test_the_kernel_is_held_by_its_sandboxs_boundary"
 time="0.9" />
</testsuite></testsuites>""")
    assert tutorial_times(junit) == {"person.trains": 16.39, "person.tunes": 15.75}


def test_the_tutorial_test_is_the_one_the_harness_runs():
    suite = Path(cuj.__file__).with_name("test_notebook_work.py").read_text()
    assert f"def {TUTORIAL_TEST}(" in suite
