"""``rollforge inspect``: what is in these rollouts files, and is every line accounted for?"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from rollforge import api
from rollforge.cli.common import add_command, add_max_line_bytes, api_keywords, print_json
from rollforge.cli.corpus_tables import print_file_table, print_rejects_table
from rollforge.cli.environments import add_policy_args, render_environments
from rollforge.progress import set_quiet

EXAMPLES = """\
  rollforge inspect rollouts.jsonl
  rollforge inspect runs/ --json | jq .reward
  zcat rollouts.jsonl.gz | rollforge inspect -
  rollforge inspect runs/ --success-threshold grl_sokoban_gymnasium_agent=10 --json | jq .environments
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "inspect",
        help="summarise rollouts files: counts, rewards, shapes, rejects",
        description="Read rollouts (files, directories, globs, - for stdin; .jsonl, .jsonl.gz, .jsonl.zst) "
        "and report lines, rollouts, rejects by reason with file:line examples, prompts and rollouts per "
        "prompt, reward statistics, item and reasoning shapes, tool use and warnings.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="rollouts files, directories or globs; - for stdin"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout instead of tables"
    )
    parser.add_argument("--workers", type=int, help="processes to use (default: all cores)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_max_line_bytes(parser)
    add_policy_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    set_quiet(args.quiet or args.json)
    summary = api.inspect(args.paths, **api_keywords(args, api.inspect))
    if args.json:
        print_json(summary)
    else:
        render(summary, Console())
    return 0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(s: dict[str, Any], console: Console) -> None:
    head = Table(title="rollouts", show_header=False, title_justify="left")
    rejected = len(s["rejected"])
    head.add_row("lines", str(s["lines"]))
    head.add_row("rollouts", str(s["rollouts"]))
    head.add_row("rejected", str(rejected))
    head.add_row("duplicates (repeat an earlier line)", str(s["duplicates"]["count"]))
    head.add_row("prompts", str(s["prompts"]))
    head.add_row("prompts with reward spread (DPO-ready)", str(s["prompts_with_reward_spread"]))
    head.add_row("rollouts per prompt", ", ".join(f"{k}x: {v}" for k, v in s["rollouts_per_prompt"].items()))
    head.add_row("tool-use rate", f"{s['tool_use_rate']:.1%}")
    head.add_row("truncated", str(s["truncated"]))
    console.print(head)
    reward = s["reward"]
    if reward.get("count"):
        table = Table(title="reward", title_justify="left")
        cols = ["min", "p10", "p25", "p50", "p75", "p90", "max", "mean", "std", "distinct"]
        for col in cols:
            table.add_column(col, justify="right")
        q = reward["quantiles"]
        table.add_row(*[_fmt(reward[c] if c in reward else q[c]) for c in cols])
        console.print(table)
    _counts(console, "task types", s["task_types"])
    _counts(console, "items by type (input + output)", s["items"])
    _counts(console, "reasoning shapes", s["reasoning"])
    print_file_table(console, s["per_file"])
    print_rejects_table(console, s["rejected_by_reason"])
    for comp in s["companions"]:
        note = {
            "failures": f"{comp['lines']} failed rows skipped",
            "materialized_inputs": "joined for missing fields",
            "aggregate_metrics": "not read",
        }[comp["kind"]]
        console.print(f"companion [bold]{comp['kind']}[/]: {comp['path']} ({note})")
    for entry in s.get("same_file", ()):
        console.print(f"note: {entry['path']} is the same file as {entry['same_as']}: read once")
    render_environments(s.get("environments", {}), s.get("environment_warnings", []), console)
    for warning in s["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}")


def _counts(console: Console, title: str, counts: dict[str, int]) -> None:
    if not counts:
        return
    table = Table(title=title, title_justify="left")
    table.add_column("kind")
    table.add_column("count", justify="right")
    for key, value in counts.items():
        table.add_row(key, str(value))
    console.print(table)
