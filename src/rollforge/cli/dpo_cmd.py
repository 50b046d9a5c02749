"""``rollforge dpo``: preference pairs from several rollouts of the same prompt."""

from __future__ import annotations

import argparse
import sys
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
from rollforge.empty import recollect_note
from rollforge.export.formats import DPO_FORMATS, TRL
from rollforge.pairs import MARGIN_SCALES, STRATEGIES

EXAMPLES = """\
  rollforge dpo rollouts.jsonl -o dpo.jsonl
  rollforge dpo runs/ -o dpo.jsonl --pairing all --min-margin 0.3 --max-pairs-per-prompt 4
  rollforge dpo runs/ -o dpo.jsonl --no-success-only --format nemo-rl --json   # any better rollout may be chosen
  rollforge dpo runs/ -o dpo.jsonl --recollect again.jsonl   # unpaired prompts as task rows for rollforge collect
  rollforge dpo runs/ -o dpo.jsonl --split-at-divergence      # multi-turn: compare only where they differ
  rollforge dpo runs/ -o data/dpo.jsonl --format sharegpt     # LLaMA-Factory pairwise, + data/dataset_info.json
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "dpo",
        help="write DPO preference pairs from rollouts of the same prompt",
        description="Groups ALL rollouts by prompt (the rejected side needs the low rewards), pairs inside each "
        "group only, and writes prompt/chosen/rejected rows. The chosen side must pass the quality filters (by "
        "default it is a success: --no-success-only lifts that); equal rewards and identical trajectories are "
        "never paired. Prompts without a pair are counted by reason. No pair at all is an error (exit 1, with "
        "the fix: usually several rollouts per task, see --recollect) unless --allow-empty. openai and sharegpt "
        "(LLaMA-Factory) hold a side of one assistant message only: other pairs are skipped and counted.",
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
    parser.add_argument(
        "--recollect",
        metavar="FILE",
        help="write the prompts left without a pair to FILE as NeMo Gym task rows, to run again with "
        "`rollforge collect FILE --num-repeats N` (a pair needs several rollouts of a prompt)",
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
        if acc.get("recollect"):
            print(f"recollect: {recollect_note(acc['recollect'])}", file=sys.stderr)
    return 0
