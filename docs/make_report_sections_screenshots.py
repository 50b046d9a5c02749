"""Re-take the screenshots of the report's new sections in docs/: the checklist (with the DPO traps), the
reward scale of each input file, the DPO pairs' trap figures, and sample rows as the model sees them (rendered
by a tiny model's chat template, built offline, the loss-carrying spans highlighted).

    .venv/bin/python docs/make_report_sections_screenshots.py   # the bundled example + ../shared's real files

A real run: `rollforge build` makes a release of the bundled example together with the real NeMo Gym files
(when ../shared/rollouts/nemo-gym exists: two of them reward on other scales than 0..1), and Debian's Chromium
(driven by Playwright) opens its report.html and takes each section. Nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from rollforge.cli.main import main as rollforge

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
SHARED = ROOT.parent / "shared" / "rollouts" / "nemo-gym"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--hide-scrollbars",
]
SHOTS = {  # file -> the element taken
    "report-checklist.png": "#checklist",
    "report-reward-scales.png": "#rewards",
    "report-dpo-traps.png": "#dpo",
    "report-samples.png": "#samples",
}


def build(tmp: Path) -> Path:
    os.chdir(ROOT)  # relative inputs: the pages show file paths as they were given
    inputs = ["examples/rollouts"] + [os.path.relpath(SHARED, ROOT)] * SHARED.is_dir()
    from rollforge.tiny import build_tiny_model  # a real chat template with generation markers, built offline

    tokenizer = str(build_tiny_model(tmp / "tiny-base"))
    status = rollforge(
        ["build", *inputs, "-o", str(tmp / "releases"), "-q", "--no-success-only", "--tokenizer", tokenizer]
    )
    if status != 0:
        raise SystemExit(f"rollforge build failed ({status})")
    return tmp / "releases" / "v1" / "report.html"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        report = build(Path(tmp))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(report.as_uri())
            for name, selector in SHOTS.items():
                page.locator(selector).first.screenshot(path=str(DOCS / name))
                print(f"wrote docs/{name}")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
