"""``rollforge kto``: unpaired preference rows (TRL's KTO format) when prompts have one rollout each."""

from __future__ import annotations

import argparse
from typing import Any

from rollforge import api
from rollforge.cli.common import add_command, api_keywords, print_json
from rollforge.cli.options import add_filter_args, add_reasoning_arg, add_run_args, apply_run_args
from rollforge.cli.summary import print_accounting

EXAMPLES = """\
  rollforge kto rollouts/ -o kto.jsonl                           # successes true, failures false
  rollforge kto rollouts/ -o kto.jsonl --undesirable-below 0.3   # rewards in [0.3, success) get no row
  rollforge kto runs/ -o kto.jsonl --success-field is_correct --max-turns 20 --dedup exact --json
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "kto",
        help="write KTO rows (prompt, completion, label) from rollouts: preference data without pairs",
        description="One row per rollout that passes the quality filters, in TRL's unpaired preference format: "
        "prompt and completion as message lists (tool calls, tool outputs and reasoning intact; tools as a JSON "
        "string), label true when the rollout is a success (--success-threshold / --success-field), false when "
        "it is not and its reward is below --undesirable-below (default: every rollout that is not a success). "
        "A kept rollout with neither label is filtered (between_labels). The quality filters apply to both "
        "labels: --success-only (off by default here, unlike sft) or --min-reward leave no undesirable rows. Made for runs with one rollout per "
        "task, where no DPO pair exists. Prints the accounting: lines = written + filtered + rejected.",
        examples=EXAMPLES,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="rollouts files, directories, globs or -")
    parser.add_argument(
        "-o", "--output", required=True, help="output JSONL (written atomically); - for stdout"
    )
    parser.add_argument(
        "--undesirable-below",
        type=float,
        metavar="REWARD",
        help="label false only a failure with reward below this (default: every rollout that is not a success)",
    )
    add_reasoning_arg(parser)
    add_filter_args(parser)
    add_run_args(parser)
    # Failures are the undesirable rows: unlike sft, kto keeps them unless --success-only is given.
    parser.set_defaults(func=run, success_only=False)


def run(args: argparse.Namespace) -> int:
    apply_run_args(args)
    acc = api.kto(args.paths, args.output, **api_keywords(args, api.kto))
    if args.json:
        print_json(acc, args.output)
    else:
        print_accounting(acc, "kto", args.output)
    return 0
