"""Regenerate docs/img/html-report.png: the example suite's HTML report, as Chromium shows it.

Run from anywhere: ``.venv/bin/python docs/img/html_report_screenshot.py``. It runs
``conftest_examples`` on the emulator with the demo failures and ``--cekura-html``, then takes
a screenshot of the page with headless Chromium (Debian's ``chromium`` package).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "html-report.png"
WINDOW = "1200,1150"


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium not found: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "report.html"
        command = [sys.executable, "-m", "pytest", "conftest_examples", "--cekura-emulator"]
        command += ["--run-demo-failures", f"--cekura-html={page}", "-q", "-p", "no:randomly"]
        subprocess.run(command, cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
        if not page.is_file():
            print("the example run wrote no report", file=sys.stderr)
            return 1
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={Path(folder) / 'profile'}",
                f"--window-size={WINDOW}",
                f"--screenshot={OUT}",
                page.as_uri(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
