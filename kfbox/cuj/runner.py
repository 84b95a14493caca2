"""Runs the journey suites (pytest, in a child process) for a profile and reads back the records."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kfbox.fixtures.plugin import RECORDS_FILE
from kfbox.sandbox.config import SandboxSpec
from kfbox.sandbox.engines import get_engine
from kfbox.sandbox.engines.base import ComponentStatus
from kfbox.sandbox.report.model import JourneyRecord, StepRecord
from kfbox.sandbox.report.profiles import get_profile

SUITE_DIR = Path(__file__).parent


@dataclass
class SuiteOutcome:
    journeys: list[JourneyRecord]
    junit_xml: Path
    logs_dir: Path
    components: list[ComponentStatus]
    engine: str
    pytest_exit_code: int


def workspace_for(out_dir: Path) -> Path:
    """A run's own files (build contexts, fetched models) sit beside its output folder, not in
    it: that folder becomes the results bundle, which holds only masked logs and reports."""
    return out_dir.with_name(f"{out_dir.name}.workspace")


def pytest_command(
    profile: str,
    out_dir: Path,
    spec_file: Path,
    *,
    scenario: str,
    require_gpu: bool,
    keep: bool = False,
    extra: list[str] | None = None,
) -> list[str]:
    markers = get_profile(profile).pytest_markers
    command = [
        sys.executable, "-m", "pytest",
        "-c", str(SUITE_DIR / "pytest.ini"), "--rootdir", str(SUITE_DIR), str(SUITE_DIR),
        "-p", "no:kmock",  # kmock's plugin needs pytest-asyncio; kfbox never uses it
        "-m", markers, "-q", "--no-header", "-rfE",
        f"--junitxml={out_dir / 'junit.xml'}",
        f"--kfbox-out={out_dir}",
        f"--kfbox-workspace={workspace_for(out_dir)}",
        f"--kfbox-spec={spec_file}",
        f"--kfbox-scenario={scenario}",
    ]  # fmt: skip
    if require_gpu:
        command.append("--require-gpu")
    if keep:
        command.append("--kfbox-keep")
    return command + list(extra or [])


def run_suite(
    profile: str,
    out_dir: Path,
    spec: SandboxSpec,
    *,
    scenario: str = "digits",
    require_gpu: bool = False,
    keep: bool = False,
) -> SuiteOutcome:
    """Run the profile's suites against the sandbox `spec` names, writing junit.xml, logs/ and
    workspace/ into `out_dir`; pytest's output goes to this terminal as it happens."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "logs").mkdir(exist_ok=True)
    spec_file = out_dir / "logs" / "spec.json"
    spec_file.write_text(spec.model_dump_json(indent=2))
    # The profile's own requirement: a gpu profile without a GPU is not a pass either way, but
    # --require-gpu makes the steps fail rather than skip, which is what a GPU gate wants.
    done = subprocess.run(
        pytest_command(
            profile, out_dir, spec_file, scenario=scenario, require_gpu=require_gpu, keep=keep
        ),
        check=False,
    )
    engine = get_engine(spec)
    return SuiteOutcome(
        journeys=read_records(out_dir / RECORDS_FILE),
        junit_xml=out_dir / "junit.xml",
        logs_dir=out_dir / "logs",
        components=engine.status().components,
        engine=spec.engine,
        pytest_exit_code=done.returncode,
    )


def read_records(path: Path) -> list[JourneyRecord]:
    if not path.exists():
        return []
    journeys = []
    for raw in json.loads(path.read_text()):
        steps = [StepRecord(**step) for step in raw.pop("steps")]
        journeys.append(JourneyRecord(**raw, steps=steps))
    return journeys
