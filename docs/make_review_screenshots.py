"""Re-take the review app's screenshots in docs/: the list, a conversation, a DPO pair side by side.

    .venv/bin/python docs/make_review_screenshots.py                    # the bundled example (what the README shows)
    .venv/bin/python docs/make_review_screenshots.py ../shared/rollouts/nemo-gym   # other rollouts for the list

A real run: `rollforge build` makes a release of the bundled example, two `rollforge review` servers serve the
rollouts and the release's DPO pairs, and Debian's Chromium (driven by Playwright) labels a few rollouts with the keyboard,
goes back to the list and takes the pictures. Beside the rollouts it writes one more, in NeMo Gym's format, shaped
as a reasoning model with tools answers through the Responses API: encrypted reasoning before each call
(``include=["reasoning.encrypted_content"]``) and a tool server that answers with a JSON string. Nothing is fetched
from the network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rollforge.review.index import RolloutIndex
from rollforge.review.pairs import PairIndex, pair_sources

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
EXAMPLE = Path("examples") / "rollouts"  # relative: the pages show file paths as they were given
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--hide-scrollbars",
]  # fmt: skip
ENCRYPTED = {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAABo" + "Qk9Y" * 60}


def _call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": json.dumps(args)}


def _output(call_id: str, value: Any) -> dict[str, Any]:
    # The tool server answered with a JSON string: the output is that string's JSON text.
    return {"type": "function_call_output", "call_id": call_id, "output": json.dumps(value)}


def showcase_rollout() -> dict[str, Any]:
    forecast = {"city": "Lyon", "unit": "celsius", "days": [{"day": "Sat", "high": 24, "low": 13, "rain": 0.1},
                                                             {"day": "Sun", "high": 19, "low": 11, "rain": 0.7}]}  # fmt: skip
    tools = [
        {
            "type": "function",
            "name": n,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
        for n in ("get_forecast", "get_air_quality")
    ]
    say = "Saturday is the better day: 24 °C, dry (10% rain) and good air. Sunday brings rain (70%)."
    output = [
        ENCRYPTED,
        _call("call_1", "get_forecast", {"city": "Lyon", "days": 2}),
        _output("call_1", json.dumps(forecast)),  # a JSON object, sent as a JSON string
        ENCRYPTED,
        _call("call_2", "get_air_quality", {"city": "Lyon"}),
        _output("call_2", "AQI 31 (good)\nPM2.5 7 µg/m³\nsource: station Lyon-Centre"),
        ENCRYPTED,
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": say}]},
    ]
    prompt = [
        {
            "type": "message",
            "role": "developer",
            "content": "You plan weekends. Check the forecast before advising.",
        },
        {
            "type": "message",
            "role": "user",
            "content": "Which day this weekend is better for a bike ride in Lyon?",
        },
    ]
    return {
        "responses_create_params": {"input": prompt, "tools": tools},
        "response": {"output": output},
        "reward": 1.0,
        "metadata": {"task_type": "planning"},
    }


def _server(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "rollforge.cli.main", "review", *args, "--port", "0", "--reviewer", "alice"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("serving "):
        proc.kill()
        raise SystemExit(f"review server did not start: {line!r} {proc.communicate()[1]}")
    return proc, line.split()[1]


def _label(page: Any, keys: list[str]) -> None:
    """Label rollouts in a row from the page open, one key each, with a note on the first."""
    page.keyboard.press("n")
    page.keyboard.type("right answer, clear steps")
    page.keyboard.press("Escape")
    for key in keys:
        with page.expect_navigation():
            page.keyboard.press(key)


def take(tmp: Path, rollouts: list[str], chromium: str, width: int) -> None:
    from playwright.sync_api import sync_playwright

    (tmp / "showcase").mkdir()
    showcase = tmp / "showcase" / "weekend_planner.jsonl"
    showcase.write_text(json.dumps(showcase_rollout()) + "\n")
    build = [
        sys.executable,
        "-m",
        "rollforge.cli.main",
        "build",
        str(EXAMPLE),
        "-o",
        str(tmp / "releases"),
        "-q",
    ]
    subprocess.run(build, check=True, capture_output=True, cwd=ROOT)
    release = str(tmp / "releases" / "v1")
    index = RolloutIndex.load([str(ROOT / p) for p in rollouts] + [str(showcase)])
    target = next(e.id for e in index.entries if "weekend_planner" in index.sources[e.source].path)
    pairs = PairIndex.load(pair_sources([release]) or [])
    # a short pair that calls tools: the picture stays readable
    pair = min((e for e in pairs.entries if e.chosen_calls), key=lambda e: e.chosen_chars + e.rejected_chars)
    servers = [_server([*rollouts, str(showcase), "--db", str(tmp / "r.sqlite")]),
               _server([release, "--db", str(tmp / "p.sqlite")])]  # fmt: skip
    try:
        (_, url), (_, pair_url) = servers
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
            page = browser.new_context(
                viewport={"width": width, "height": 900}, device_scale_factor=1
            ).new_page()
            page.goto(url + "?page=1")
            with page.expect_navigation():
                page.keyboard.press("N")  # the first unlabelled rollout
            _label(page, ["a", "r", "f", "j", "a"])
            with page.expect_navigation():
                page.keyboard.press("u")  # back to the list, at the row last seen
            page.screenshot(path=str(DOCS / "review-list.png"))
            page.goto(f"{url}r/{target}")
            page.screenshot(path=str(DOCS / "review-conversation.png"), full_page=True)
            page.set_viewport_size({"width": max(width, 1440), "height": 900})
            page.goto(f"{pair_url}r/{pair.id}")
            page.screenshot(path=str(DOCS / "review-pair.png"), full_page=True)
            browser.close()
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="*", help="rollouts for the list (default: the bundled example)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.relpath(Path(p).resolve(), ROOT) for p in args.paths] or [str(EXAMPLE)]
        take(Path(tmp), paths, args.chromium, args.width)
    for name in ("review-list.png", "review-conversation.png", "review-pair.png"):
        print(f"wrote {DOCS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
