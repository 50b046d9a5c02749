"""``rollforge dpo``: preference pairs from several rollouts of the same prompt."""

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
from rollforge.export.formats import DPO_FORMATS, TRL
from rollforge.pairs import MARGIN_SCALES, STRATEGIES

EXAMPLES = """\
  rollforge dpo rollouts.jsonl -o dpo.jsonl
  rollforge dpo runs/ -o dpo.jsonl --pairing all --min-margin 0.3 --max-pairs-per-prompt 4
  rollforge dpo runs/ -o dpo.jsonl --success-only --format nemo-rl --json
  rollforge dpo runs/ -o dpo.jsonl --split-at-divergence      # multi-turn: compare only where they differ
  rollforge dpo runs/ -o data/dpo.jsonl --format sharegpt     # LLaMA-Factory pairwise, + data/dataset_info.json
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "dpo",
        help="write DPO preference pairs from rollouts of the same prompt",
        description="Groups ALL rollouts by prompt (the rejected side needs the low rewards), pairs inside each "
        "group only, and writes prompt/chosen/rejected rows. The chosen side must pass the quality filters; "
        "equal rewards and identical trajectories are never paired. Prompts without a pair are counted by reason. "
        "openai and sharegpt (LLaMA-Factory) hold a side of one assistant message only: other pairs are skipped "
        "and counted.",
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
        "--format", choices=DPO_FORMATS, default=TRL.name, help=f"target trainer format (default: {TRL.name})"
    )
    parser.add_argument(
        "--pairing", choices=STRATEGIES, default="best-worst", help="pairing strategy (default: best-worst)"
    )
    parser.add_argument(
        "--min-margin", type=float, default=0.1, help="chosen reward - rejected reward >= this (default: 0.1)"
    )
    parser.add_argument(
        "--margin-scale",
        choices=MARGIN_SCALES,
        default="absolute",
        help="absolute: --min-margin in reward units; range: a fraction of each environment's observed reward "
        "range (0.1 is 1.2 on sokoban's -2..10, 0.1 on a 0/1 verifier) (default: absolute)",
    )
    parser.add_argument("--max-pairs-per-prompt", type=int, help="cap pairs per prompt (with --pairing all)")
    parser.add_argument(
        "--split-at-divergence",
        action="store_true",
        help="move the messages both sides share into the prompt",
    )
    add_reasoning_arg(parser)
    add_filter_args(parser, chosen_side=True)
    add_run_args(parser, pairs=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    apply_run_args(args)
    acc = api.dpo(args.paths, args.output, **api_keywords(args, api.dpo))
    if args.json:
        print_json(acc, args.output)
    else:
        print_accounting(acc, "dpo", args.output)
    return 0
