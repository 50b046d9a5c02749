"""``rollforge report``: the pre-training validation report of a release, released files or rollouts."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console

from rollforge import api
from rollforge.cli.common import add_command, add_max_line_bytes, api_keywords, print_json

EXAMPLES = """\
  rollforge report releases/v1                          # a release: its splits and manifest
  rollforge report releases/v1 --tokenizer ./my-model --max-tokens 4096
  rollforge report sft.jsonl dpo.jsonl -o check.html    # released JSONL files
  rollforge report rollouts/ --json | jq .warnings      # rollouts, read as SFT rows
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of tokens, got {value}")
    return value


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "report",
        help="validation report (HTML + summary): size, rewards, lengths, diversity, checklist",
        description="Check data before training: dataset size and accounting, reward distributions, lengths in "
        "tokens, task diversity, tool use, reasoning, duplicates, DPO margins and pairs per prompt, each judged "
        "against a stated threshold. PATH is a release directory, released SFT/DPO JSONL files, or rollouts. "
        "Writes one self-contained HTML file and prints a summary.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="release directory, released JSONL, or rollouts"
    )
    parser.add_argument(
        "-o",
        "--output",
        default="report.html",
        metavar="FILE",
        help="HTML file (default: report.html; - for stdout)",
    )
    parser.add_argument(
        "--tokenizer",
        metavar="PATH",
        help="local tokenizer directory: exact token counts by its chat template "
        "(default: an estimate, characters / 4)",
    )
    parser.add_argument(
        "--max-tokens", type=_positive, metavar="N", help="count (and warn about) rows over N tokens"
    )
    add_max_line_bytes(parser)
    parser.add_argument("--fail-on-warn", action="store_true", help="exit with status 1 when any check warns")
    parser.add_argument(
        "--json", action="store_true", help="print the report's numbers as JSON instead of a summary"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rollforge.report import render_terminal  # here, not at the top: `rollforge --help` stays fast

    data = api.report(args.paths, args.output, **api_keywords(args, api.report))
    if args.json:
        print_json({"output": args.output, **data.summary()}, args.output)
    else:
        render_terminal(data, Console(stderr=args.output == "-"))  # the page owns stdout with -o -
    print(f"wrote {'standard output' if args.output == '-' else args.output}", file=sys.stderr)
    return 1 if args.fail_on_warn and data.warnings else 0
