"""The report in a real browser (headless Chromium, Debian's `chromium`, installed by
`make system-deps`): at a phone's 390 px nothing is wider than the screen outside a table's own
scroll box, the verdict column stays in view, every in-page link has its target; screenshots
at 1280 and 390 px are kept under test-output/browser/ (MNISTLAB_TEST_OUTPUT)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.report.test_screens import report

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("MNISTLAB_TEST_OUTPUT", REPO / "test-output")) / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHECK = """
<script>
window.addEventListener("load", () => {
  const vw = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width && (box.right > vw + 1 || box.left < -1) && !el.closest(".table > table"))
      wide.push(el.tagName + "." + el.className + " " + Math.round(box.right));
  }
  const verdicts = [...document.querySelectorAll(".verdicts tbody td:nth-child(10)")].map(
    td => { const b = td.getBoundingClientRect(); return b.width > 0 && b.left >= 0 && b.right <= vw + 1; });
  const broken = [...document.querySelectorAll('a[href^="#"]')]
    .filter(a => !document.getElementById(a.getAttribute("href").slice(1))).length;
  const scrollers = [...document.querySelectorAll(".table")]
    .filter(t => t.scrollWidth > t.clientWidth && getComputedStyle(t).overflowX === "auto").length;
  parent.document.body.dataset.check = JSON.stringify({vw, wide, verdicts, broken, scrollers,
    page: document.documentElement.scrollWidth});
});
</script>
"""


def chromium(*args: str) -> str:
    command = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: `make system-deps` installs it")
def test_the_report_at_390_px_fits_the_screen_keeps_the_verdict_and_its_links(
    monkeypatch, tmp_path
):
    _, paths = report(monkeypatch, tmp_path)
    html = paths.html.read_text()
    probe = paths.html.with_name("probe.html")
    probe.write_text(html.replace("</body>", CHECK + "</body>"))
    # A phone's screen: a 390 px frame (headless Chromium's window has a minimum width).
    phone = paths.html.with_name("phone.html")
    phone.write_text('<body><iframe src="probe.html" width="390" height="844"></iframe></body>')
    dom = chromium(
        "--window-size=1280,900",
        "--allow-file-access-from-files",
        "--virtual-time-budget=8000",
        "--dump-dom",
        phone.as_uri(),
    )
    found = re.search(r'data-check="([^"]*)"', dom)
    assert found, dom[-500:]
    check = json.loads(found.group(1).replace("&quot;", '"'))
    assert check["vw"] <= 390
    assert check["page"] <= check["vw"], check  # the page itself never scrolls sideways
    assert check["wide"] == [], check["wide"][:10]
    assert check["verdicts"] and all(check["verdicts"]), check
    assert check["scrollers"] >= 1  # the verdict table scrolls in its own box
    assert check["broken"] == 0
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 2400), (390, 2400)):
        shot = OUTPUT / f"report-{width}.png"
        chromium(
            f"--window-size={width},{height}",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            paths.html.as_uri(),
        )
        assert shot.stat().st_size > 10_000
