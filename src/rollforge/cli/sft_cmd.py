"""``rollforge sft``: successful trajectories as chat conversations a trainer accepts as they are."""

from __future__ import annotations

import argparse
from typing import Any

from rollforge import api
from rollforge.cli.common import add_command, api_keywords, print_json
from rollforge.cli.options import (
    add_filter_args,
    add_reasoning_arg,
    add_run_args,
    apply_run_args,
)
from rollforge.cli.summary import print_accounting
from rollforge.export.formats import SFT_FORMATS, TRL

EXAMPLES = """\
  rollforge sft rollouts.jsonl -o sft.jsonl                 # successes only (reward >= 1), as build
  rollforge sft rollouts.jsonl -o sft.jsonl --no-success-only --min-reward 0.5
  rollforge sft runs/ -o sft.jsonl --min-reward 0.8 --require-tool-use --dedup near
  rollforge sft runs/ -o sft.jsonl --success-field is_correct --success-only --format openai
  rollforge sft runs/ -o data/sft.jsonl --format sharegpt        # also writes data/dataset_info.json
  rollforge sft runs/ -o sft.jsonl --where 'metadata.task_type == "math"' --balance-by task_name \\
      --max-per-category 500 --json
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "sft",
        help="write SFT rows (chat conversations) from rollouts",
        description="One row per rollout that passes the quality filters (by default only successes: reward >= "
        "--success-threshold, or a truthy --success-field; --no-success-only keeps every rollout), the same "
        "policy as dpo and build: the full conversation (prompt included), "
        "tool calls and reasoning intact, ending on the assistant's turn. Formats: trl (messages + tools as a "
        "JSON string + ids, reward, task_type), openai, nemo-rl (openai_format loader), sharegpt (LLaMA-Factory). "
        "Prints the accounting: lines = written + filtered + rejected, and the success definition in force. "
        "Writing no row is an error (exit 1, with the top reasons and the fix) unless --allow-empty.",
        examples=EXAMPLES,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="rollouts files, directories, globs or -")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="output JSONL (written atomically); - for stdout, with the summary on stderr",
    )
    parser.add_argument(
        "--format", choices=SFT_FORMATS, default=TRL.name, help=f"target trainer format (default: {TRL.name})"
    )
    add_reasoning_arg(parser)
    add_filter_args(parser)
    add_run_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    apply_run_args(args)
    acc = api.sft(args.paths, args.output, **api_keywords(args, api.sft))
    if args.json:
        print_json(acc, args.output)
    else:
        print_accounting(acc, "sft", args.output)
    return 0
