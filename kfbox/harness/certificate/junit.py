"""junit.xml for a results bundle whose pytest wrote none: one test case per journey step."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from kfbox.harness.records import JourneyRecord


def journeys_junit(journeys: Sequence[JourneyRecord], suite_name: str, error: str = "") -> bytes:
    """One testcase per journey step (blocked counts as skipped, as pytest would report it);
    `error`, when the suite never ran, becomes an error testcase so CI shows why."""
    suite = ET.Element("testsuite", name=suite_name)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if error:
        case = ET.SubElement(suite, "testcase", classname="kfbox.certify", name="suite")
        ET.SubElement(case, "error", message=error)
        counts["tests"] += 1
        counts["errors"] += 1
    total_time = 0.0
    for journey in journeys:
        for step in journey.steps:
            case = ET.SubElement(suite, "testcase",
                                 classname=f"kfbox.cuj.{journey.scenario}.{journey.variant}",
                                 name=step.name, time=f"{step.duration_s:.3f}")
            counts["tests"] += 1
            total_time += step.duration_s
            if step.status == "failed":
                ET.SubElement(case, "failure", message=step.reason)
                counts["failures"] += 1
            elif step.status == "interrupted":
                ET.SubElement(case, "error", message=step.reason)
                counts["errors"] += 1
            elif step.status in ("skipped", "blocked"):
                ET.SubElement(case, "skipped", message=f"{step.status}: {step.reason}")
                counts["skipped"] += 1
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{total_time:.3f}")
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
