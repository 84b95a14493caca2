"""Runs the journey suites in a pytest child process for a profile, and reads back what its
plugin recorded. The child loads kfbox's plugin with `-p`, never through pytest's plugin
autoload, so PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 changes nothing. The engine is never asked
anything here: the run record says what the session saw, so a sandbox that goes away after the
journeys cannot erase them."""

from __future__ import annotations

import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from kfbox.harness import plugin
from kfbox.harness.profiles import Profile
from kfbox.harness.records import RunRecord, read_run
from kfbox.host.config import SandboxSpec

SUITE_DIR = Path(__file__).parent / "cuj"
STOP_S = 300
"""How long a stopping run may take to remove its workloads before it is killed."""


@dataclass
class SuiteOutcome:
    record: RunRecord | None
    """None when the session ended before its plugin could write one."""
    junit_xml: Path
    logs_dir: Path
    pytest_exit_code: int
    counts: dict[str, int] = field(default_factory=dict)
    """tests/failures/errors/skipped from junit.xml; empty when pytest wrote none."""
    interrupted: bool = False
    """The user stopped the run (Ctrl-C)."""


def workspace_for(out_dir: Path) -> Path:
    """A run's own files (build contexts, fetched models, the run record) sit beside its output
    folder, not in it: that folder becomes the results bundle, which holds only masked logs."""
    return out_dir.with_name(f"{out_dir.name}.workspace")


def pytest_command(
    profile: Profile,
    out_dir: Path,
    spec_file: Path,
    *,
    scenario: str,
    require_gpu: bool,
    keep: bool = False,
    extra: list[str] | None = None,
) -> list[str]:
    workspace = workspace_for(out_dir)
    command = [
        sys.executable, "-m", "kfbox.harness.pytest_main",
        "-c", str(SUITE_DIR / "pytest.ini"), "--rootdir", str(SUITE_DIR), str(SUITE_DIR),
        "-p", plugin.__name__,
        "-p", "no:kmock",  # kmock's plugin needs pytest-asyncio; kfbox never uses it
        "-m", profile.pytest_markers, "-q", "--no-header", "-rfE",
        f"--junitxml={out_dir / 'junit.xml'}",
        f"--kfbox-out={out_dir}",
        f"--kfbox-workspace={workspace}",
        f"--kfbox-record={workspace / plugin.RECORD_FILE}",
        f"--kfbox-spec={spec_file}",
        f"--kfbox-scenario={scenario}",
    ]  # fmt: skip
    if require_gpu:
        command.append("--kfbox-require-gpu")
    if keep:
        command.append("--kfbox-keep")
    return command + list(extra or [])


def run_suite(
    profile: Profile,
    out_dir: Path,
    spec: SandboxSpec,
    *,
    scenario: str = "digits",
    require_gpu: bool = False,
    keep: bool = False,
    output: TextIO | None = None,
) -> SuiteOutcome:
    """Run the profile's suites against the sandbox `spec` names, writing junit.xml and logs/
    into `out_dir`; pytest's output goes to this terminal as it happens (or to `output`)."""
    workspace = workspace_for(out_dir)
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    workspace.mkdir(parents=True, exist_ok=True)
    spec_file = workspace / "spec.json"
    spec_file.write_text(spec.model_dump_json(indent=2))
    command = pytest_command(
        profile, out_dir, spec_file, scenario=scenario, require_gpu=require_gpu, keep=keep
    )
    exit_code, interrupted = run_to_the_end(command, output)
    return SuiteOutcome(
        record=read_run(workspace / plugin.RECORD_FILE),
        junit_xml=out_dir / "junit.xml",
        logs_dir=out_dir / "logs",
        pytest_exit_code=exit_code,
        counts=junit_counts(out_dir / "junit.xml"),
        interrupted=interrupted,
    )


def run_to_the_end(command: list[str], output: TextIO | None = None) -> tuple[int, bool]:
    """Run the suite; on Ctrl-C let it stop cleanly: one SIGINT to it (its own session, so a
    terminal's Ctrl-C reaches it through us, once), then wait while it removes the run's
    workloads and writes its record. A second Ctrl-C kills it. (exit code, interrupted)."""
    child = subprocess.Popen(command, start_new_session=True, stdout=output,
                             stderr=subprocess.STDOUT if output else None)
    try:
        return child.wait(), False
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the run, removing its workloads (Ctrl-C again to kill)",
              file=sys.stderr, flush=True)
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=STOP_S)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            child.kill()
            child.wait()
        return child.returncode, True


def junit_counts(path: Path) -> dict[str, int]:
    """tests/failures/errors/skipped summed over the file's test suites; empty if unreadable."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    keys = ("tests", "failures", "errors", "skipped")
    return {key: sum(int(s.get(key, "0") or 0) for s in suites) for key in keys}
