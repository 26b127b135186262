"""The HTML report as a person sees it: rendered by headless Chromium (Debian's package).

A probe page loads the report in a frame and measures what is drawn (sizes, visibility,
rendered text) after the browser laid it out, then clicks the failure filter; Chromium's
``--dump-dom`` hands the measurements back. The report itself runs no script: its CSP
forbids it, so the probe lives outside it.

Without Chromium the test is skipped, except on CI (``CI=true``), where ``.ci/run`` installs
it and its absence is a failure.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import PLAYBOOK, Suite

#: Read at import, before the autouse fixture hides CI from the pytest runs tests start.
ON_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # The probe (a file: page) reads the report's document in its frame (another file:).
    "--allow-file-access-from-files",
)
#: Markup a caller could say: if it were not escaped, it would add an element and set a flag.
HOSTILE = """<img src=x onerror="window.pwned=true"><b id="injected">bold</b>"""
CATALOGUE = (
    PLAYBOOK
    + f"""
[[scenario]]
id = 40
name = '''{HOSTILE}'''
outcome = "fail"
"""
)
SUITE = """
import pytest

@pytest.mark.cekura_scenario(30, frequency=2)
def test_refill(): pass

@pytest.mark.cekura_scenario(31)
def test_billing(): pass

@pytest.mark.cekura_scenario(40)
def test_hostile(): pass
"""
PROBE = """<!doctype html>
<html><body>
<iframe id="report" src="report.html" style="width:1280px;height:2400px;border:0"></iframe>
<pre id="out">not measured</pre>
<script>
const frame = document.getElementById("report");
function measure() {
  const doc = frame.contentDocument, win = frame.contentWindow;
  const size = (el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  // Drawn for the reader: not display:none, not hidden, not inside a closed <details>.
  const shown = (el) => !!el && el.getClientRects().length > 0
    && el.checkVisibility({visibilityProperty: true, opacityProperty: true});
  const card = (el) => {
    const audio = el.querySelector("audio"), line = el.querySelector(".transcript li");
    return {
      id: el.querySelector("summary code").textContent,
      open: el.open,
      shown: shown(el),
      text: el.innerText,
      audio: audio ? {shown: shown(audio), size: size(audio), src: audio.src} : null,
      line: line && shown(line) ? line.innerText : null,
    };
  };
  const out = {
    title: doc.title,
    pwned: win.pwned === true,
    injected: doc.querySelectorAll("img, #injected, script").length,
    charts: [...doc.querySelectorAll("svg.chart")].map((svg) => ({
      cls: svg.getAttribute("class"), size: size(svg),
      bars: [...svg.querySelectorAll("rect.bar")].map(size),
      bins: svg.querySelectorAll("rect.bin").length,
    })),
    cards: [...doc.querySelectorAll("details.card")].map(card),
  };
  doc.getElementById("only-failures").click();
  out.filtered = [...doc.querySelectorAll("details.card")].map(card);
  document.getElementById("out").textContent = JSON.stringify(out);
}
const ready = frame.contentDocument && frame.contentDocument.readyState === "complete"
  && frame.contentDocument.URL.endsWith("report.html");
if (ready) { measure(); } else { frame.addEventListener("load", measure); }
</script>
</body></html>
"""


@pytest.fixture
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is not None:
        return found
    message = "Chromium is not installed (apt-get install chromium); .ci/run installs it"
    if ON_CI:
        pytest.fail(f"{message}, and CI=true: the browser test must run on CI", pytrace=False)
    pytest.skip(message)


def render_in_chromium(chromium: str, page: Path) -> dict[str, Any]:
    """Open the probe next to ``page`` in headless Chromium; return what it measured."""
    probe = page.parent / "probe.html"
    probe.write_text(PROBE, encoding="utf-8")
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={page.parent / 'profile'}"]
    done = subprocess.run(
        [*command, "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    found = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, re.S)
    assert found is not None, (
        f"Chromium gave no page (exit {done.returncode}): {done.stderr[-2000:]}"
    )
    assert found.group(1) != "not measured", "the probe did not run: was the report loaded?"
    measured: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return measured


def test_report_in_chromium_shows_the_failing_tests_reason_transcript_player_and_charts(
    make_suite: Callable[[str], Suite], chromium: str, tmp_path: Path
) -> None:
    suite = make_suite(CATALOGUE)
    suite.pytester.makepyfile(test_agent=SUITE)
    page = tmp_path / "report.html"
    suite.run(f"--cekura-html={page}").assert_outcomes(passed=1, failed=2)
    seen = render_in_chromium(chromium, page)

    # The hostile transcript and name were text: no element added, nothing ran.
    assert seen["pwned"] is False
    assert seen["injected"] == 0
    cards = {card["id"]: card for card in seen["cards"]}
    hostile = cards["test_agent.py::test_hostile"]
    assert HOSTILE in hostile["text"]  # shown to the reader as the characters it is

    # The failing test: open, its reason, its run's why, its transcript and a player.
    billing = cards["test_agent.py::test_billing"]
    assert billing["open"]
    assert billing["shown"]
    assert "decided by: threshold rule: 0 of 1 runs succeeded (0%)" in billing["text"]
    assert "why: the agent did not meet the scenario's expectations" in billing["text"]
    assert re.match(r"\d\d:\d\d\.\d Main Agent ", billing["line"])
    assert billing["audio"]["shown"]
    width, height = billing["audio"]["size"]
    assert width > 100
    assert height > 10
    assert billing["audio"]["src"].startswith("https://recordings.emulator.invalid/runs/")
    assert "Latency" in billing["text"]  # the metrics table
    assert "open in Cekura" in billing["text"]

    # The passed test is collapsed: its summary line shows, its transcript does not.
    refill = cards["test_agent.py::test_refill"]
    assert refill["shown"]
    assert not refill["open"]
    assert refill["line"] is None
    assert "2/2 runs" in refill["text"]

    # Both charts are drawn, one bar per test, each with a size.
    charts = {chart["cls"]: chart for chart in seen["charts"]}
    success, latency = charts["chart success"], charts["chart latency"]
    assert success["size"][0] > 300
    assert success["size"][1] > 100
    assert len(success["bars"]) == 3
    assert all(w > 0 and h > 0 for w, h in success["bars"])
    assert latency["size"][0] > 300
    assert latency["bins"] > 0

    # The failure filter hides the passed test and keeps the others.
    after = {card["id"]: card["shown"] for card in seen["filtered"]}
    assert after == {
        "test_agent.py::test_billing": True,
        "test_agent.py::test_hostile": True,
        "test_agent.py::test_refill": False,
    }
