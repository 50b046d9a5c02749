"""``rollforge sample``: a stratified, seeded sample of rollouts for manual review."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rollforge import api
from rollforge.cli.common import add_command, api_keywords, print_json
from rollforge.cli.options import add_run_args, apply_run_args
from rollforge.cli.summary import print_same_file, shown_output
from rollforge.filters import ENV_FIELD

EXAMPLES = """\
  rollforge sample rollouts.jsonl -o review.jsonl                 # 10 below 0.5, 20 in [0.5, 0.8), 20 >= 0.8
  rollforge sample runs/ -o review.jsonl --strata 0:20,1:20,inf:10 --seed 7
  rollforge review review.jsonl --db review.sqlite                # then label them in the browser
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "sample",
        help="draw a stratified review sample by reward",
        description="A seeded sample stratified by reward, written as the original rollout lines (so it is itself a "
        "rollouts file for `rollforge review`). The choice does not depend on input order or worker count.",
        examples=EXAMPLES,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="rollouts files, directories, globs or -")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="output JSONL of sampled rollouts; - for stdout, with the summary on stderr",
    )
    parser.add_argument(
        "--strata",
        metavar="SPEC",
        help="UPPER:COUNT,... (default 0.5:10,0.8:20,inf:20, the tutorial's strata)",
    )
    parser.add_argument(
        "--by-env",
        action="store_true",
        help="draw each stratum within each environment (agent_ref.name, else the file's stem): a stratum "
        "per environment and reward band",
    )
    parser.add_argument(ENV_FIELD.flag, metavar=ENV_FIELD.metavar, help=ENV_FIELD.help)
    add_run_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    apply_run_args(args)
    acc = api.sample(args.paths, args.output, **api_keywords(args, api.sample))
    if args.json:
        print_json(acc, args.output)
        return 0
    out = sys.stderr if args.output == "-" else sys.stdout  # the rows own stdout with -o -
    for name, entry in acc["strata"].items():
        print(f"{'' if args.by_env else 'reward '}{name}: {entry['written']} of {entry['wanted']}", file=out)
    print_same_file(acc, out)
    print(f"wrote {acc['written']} rollouts to {shown_output(args.output)}", file=out)
    return 0
