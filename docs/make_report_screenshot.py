"""Re-take docs/report.png: render a validation report and screenshot it with headless Chromium.

    .venv/bin/python docs/make_report_screenshot.py                  # example: 2000 rollouts -> sft + dpo files
    .venv/bin/python docs/make_report_screenshot.py releases/v1      # a real release (what the README shows)

Without a path it generates the example corpus and makes SFT rows (reward >= 0.5) and DPO pairs from it with
rollforge's own pipeline, then reports those two files.

Needs Debian's Chromium (``make browser``); nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rollforge.example import write_example
from rollforge.filters import FilterOptions
from rollforge.pipeline import make_dpo, make_sft
from rollforge.progress import set_quiet
from rollforge.report import report_paths, write_report

DOCS = Path(__file__).resolve().parent
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--hide-scrollbars",
]  # fmt: skip


def screenshot(html: Path, png: Path, width: int, height: int, chromium: str) -> None:
    cmd = [chromium, *FLAGS, f"--screenshot={png}", f"--window-size={width},{height}", html.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def example_files(tmp: Path, rollouts: int) -> list[str]:
    write_example(tmp / "rollouts", rollouts=rollouts)
    set_quiet(True)
    make_sft([str(tmp / "rollouts")], str(tmp / "sft.jsonl"), FilterOptions(min_reward=0.5))
    make_dpo([str(tmp / "rollouts")], str(tmp / "dpo.jsonl"))
    return [str(tmp / "sft.jsonl"), str(tmp / "dpo.jsonl")]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="*", help="what to report (default: a generated example corpus)")
    parser.add_argument("-o", "--output", default=str(DOCS / "report.png"))
    parser.add_argument("--rollouts", type=int, default=2000, help="size of the generated example")
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = args.paths
        if not paths:
            paths = example_files(Path(tmp), args.rollouts)
        html = Path(tmp) / "report.html"
        write_report(report_paths(paths, max_tokens=args.max_tokens), html)
        screenshot(html, Path(args.output).resolve(), args.width, args.height, args.chromium)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
