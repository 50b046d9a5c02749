"""``rollforge diff``: compare two releases."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from rollforge.build.diff import diff
from rollforge.cli.common import add_command, print_json

EXAMPLES = """\
  rollforge diff releases/v1 releases/v2
  rollforge diff releases/v1 releases/v2 --json | jq .sft
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "diff",
        help="what changed between two releases",
        description="Counts, reject and filter reasons, reward and margin distributions, prompts "
        "added and removed, and the recipe keys that changed.",
        examples=EXAMPLES,
    )
    parser.add_argument("old", help="the earlier release directory")
    parser.add_argument("new", help="the later release directory")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("", "before", "after", "change"):
        table.add_column(col, justify="right" if col else "left")
    for key, v in rows.items():
        sign = f"{v['change']:+}" if v["change"] else "0"
        table.add_row(key, str(v["before"]), str(v["after"]), sign)
    return table


def run(args: argparse.Namespace) -> int:
    result = diff(args.old, args.new)
    if args.json:
        print_json(result)
        return 0
    console = Console()
    console.print(_table("counts", result["counts"]))
    if result["rejected"]:
        console.print(_table("rejected by reason", result["rejected"]))
    if result["sft_filtered"]:
        console.print(_table("SFT filtered by reason", result["sft_filtered"]))
    for kind, metric in (("sft", "reward"), ("dpo", "margin")):
        d = result[kind]
        before, after = d[metric]["before"], d[metric]["after"]
        shift = ""
        if before.get("count") and after.get("count"):
            shift = f"; mean {metric} {before['mean']:.4g} -> {after['mean']:.4g}"
        console.print(
            f"{kind}: prompts +{d['prompts_added']} -{d['prompts_removed']} ({d['prompts_kept']} kept){shift}"
        )
    for key, change in result["recipe_changes"].items():
        console.print(f"recipe {key}: {change['before']!r} -> {change['after']!r}")
    return 0
