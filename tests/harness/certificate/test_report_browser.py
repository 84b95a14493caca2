"""report.html in a real browser: headless Chromium (Debian's `chromium`) renders the page
offline, and the verdict, every requirement, every step and the plots (training curve, trials)
must be visible, with no request leaving the file. Under CI=true a missing chromium fails the
test; elsewhere it skips with the reason."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kfbox.harness.certificate.results import write_bundle
from kfbox.harness.requirements import STEPS
from tests.support.browser import Page, open_page
from tests.support.records import journey, make_certificate

# Runs in the page: what a person sees of the verdict and of each step row.
VISIBLE_JS = """(() => {
  const seen = (el) => {
    if (!el) return false;
    const box = el.getBoundingClientRect(), style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== 'hidden'
      && style.display !== 'none' && parseFloat(style.opacity) > 0;
  };
  const verdict = document.getElementById('verdict');
  return {
    verdict: verdict ? verdict.innerText : null, verdictVisible: seen(verdict),
    steps: [...document.querySelectorAll('tr.step')].map((row) => ({
      step: row.dataset.step, text: row.innerText, visible: seen(row)
        && [...row.cells].every(seen)})),
    bars: document.querySelectorAll('#timeline rect').length,
    requirements: [...document.querySelectorAll('tr.requirement')].map((row) => ({
      id: row.dataset.requirement, status: row.dataset.status, visible: seen(row)})),
    plots: [...document.querySelectorAll('svg.plot')].map((svg) => ({
      label: svg.getAttribute('aria-label'), visible: seen(svg),
      points: [...svg.querySelectorAll('circle')].filter(seen).length,
      line: seen(svg.querySelector('polyline'))})),
  };
})()"""


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with open_page(tmp_path) as opened:
        yield opened


def _render(page: Page, html: Path) -> dict[str, Any]:
    page.send("Network.enable")
    page.send("Page.enable")
    page.send("Page.navigate", url=html.as_uri())
    page.wait_for("Page.loadEventFired")
    result = page.send("Runtime.evaluate", expression=VISIBLE_JS, returnByValue=True)
    return result["result"]["value"]


def _requests(page: Page) -> list[str]:
    return [
        e["params"]["request"]["url"]
        for e in page.events
        if e.get("method") == "Network.requestWillBeSent"
    ]


def test_failed_run_shows_the_verdict_and_every_step(page: Page, tmp_path: Path) -> None:
    report = make_certificate(journeys=[journey(tune="failed", track="blocked",
                                                serve="blocked", pipeline="blocked")],
                              exit_code=1)
    bundle = write_bundle(report, tmp_path / "bundle")
    seen = _render(page, bundle.folder / "report.html")
    assert seen["verdictVisible"], seen
    assert seen["verdict"].startswith("Profile core: NOT CERTIFIED")
    assert "step 'tune' failed before checking it: tune went failed on purpose" in seen["verdict"]
    assert [s["step"] for s in seen["steps"]] == [f"digits/{name}" for name in STEPS]
    assert all(s["visible"] for s in seen["steps"]), seen["steps"]
    statuses = [s["text"].split("\t")[1] for s in seen["steps"]]
    assert statuses == ["passed", "passed", "passed", "failed", "blocked", "blocked", "blocked"]
    assert seen["bars"] == len(STEPS)
    assert seen["requirements"] and all(r["visible"] for r in seen["requirements"])
    assert {r["status"] for r in seen["requirements"]} == {"passed", "blocked"}
    assert [p["label"] for p in seen["plots"]] == ["loss", "accuracy",
                                                   "accuracy per trial (maximize)"]
    assert all(p["visible"] and p["line"] for p in seen["plots"]), seen["plots"]
    assert [p["points"] for p in seen["plots"]] == [3, 3, 2]
    assert _requests(page) == [(bundle.folder / "report.html").as_uri()]  # nothing else fetched
    shot = page.send("Page.captureScreenshot", format="png")["data"]
    assert len(shot) > 1000  # it painted something; saved for a person to look at below
    (tmp_path / "report.png").write_bytes(base64.b64decode(shot))


def test_certified_run_shows_certified(page: Page, tmp_path: Path) -> None:
    report = make_certificate(journeys=[journey(), journey(scenario="iris")])
    seen = _render(page, write_bundle(report, tmp_path / "b").folder / "report.html")
    assert seen["verdict"].strip() == "Profile core: CERTIFIED"
    assert len(seen["steps"]) == 2 * len(STEPS)
    assert all(s["visible"] for s in seen["steps"])
