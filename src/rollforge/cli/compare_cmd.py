"""``rollforge compare``: did the candidate (after training) beat the baseline, and is the difference real?"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console

from rollforge import api, progress
from rollforge.cli.common import add_command, api_keywords, print_json
from rollforge.errors import RollforgeError

EXAMPLES = """\
  rollforge compare before.jsonl after.jsonl
  rollforge compare before.jsonl after.jsonl --success-field is_correct --k 1,8 --html compare.html
  rollforge compare base/ tuned/ --by metadata.difficulty --json | jq .delta
"""

DESCRIPTION = """\
Compare two rollouts files (or directories, globs) collected on the same tasks: mean reward, success rate
and pass@k (unbiased estimator, k <= samples per prompt) on each side, then a paired analysis over the
prompts present on both sides: per-prompt mean reward difference, wins/losses/ties, a paired bootstrap 95%
CI (prompts resampled) and a two-sided paired permutation test (exact up to 16 prompts). Prompts on one
side only are counted and listed, never paired. The same breakdown per task type, or per --by field.
Significant means the CI excludes 0 and p < 0.05; when they disagree the verdict is "inconclusive".

Each side's model, and the release it was trained on, are read from <stem>_collect.json (rollforge collect)
and the model's lineage.json (rollforge train). Runs over different task sets (tasks files, or mostly
different prompts) are refused unless --allow-different-tasks; a side whose model (or an earlier round of
it) was trained on a release holding evaluated prompts is warned of.
"""


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError("k values must be positive")
    return ks


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "compare",
        help="compare two runs: paired bootstrap CI and permutation p-value of the reward difference",
        description=DESCRIPTION,
        examples=EXAMPLES,
    )
    parser.add_argument("baseline", metavar="BASELINE", help="rollouts before (file, directory or glob)")
    parser.add_argument("candidate", metavar="CANDIDATE", help="rollouts after (file, directory or glob)")
    parser.add_argument("--by", metavar="FIELD", help="break down by this dotted field (default: task type)")
    parser.add_argument(
        "--success-threshold", type=float, default=1.0, help="success means reward >= this (default: 1.0)"
    )
    parser.add_argument(
        "--success-field", metavar="NAME", help="success means this field is truthy (is_correct)"
    )
    parser.add_argument("--k", type=_ks, default=(1, 4), metavar="K,K", help="pass@k values (default: 1,4)")
    parser.add_argument("--bootstrap", type=int, default=10_000, metavar="N", help="bootstrap resamples")
    parser.add_argument(
        "--permutations",
        type=int,
        default=10_000,
        metavar="N",
        help="random sign flips when there are more than 16 paired prompts",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default: 0)")
    parser.add_argument(
        "--allow-different-tasks",
        action="store_true",
        help="compare runs over different task sets (refused by default), pairing the prompts they share",
    )
    parser.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    parser.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rollforge.compare import render, write_html  # here, not at the top: `rollforge --help` stays fast

    progress.set_quiet(args.quiet or args.json)
    if args.html:
        from rollforge.io.target import named_files, prepare_output

        prepare_output(args.html, named_files([args.baseline, args.candidate]))
    result = api.compare(args.baseline, args.candidate, **api_keywords(args, api.compare))
    if not result["baseline"]["rollouts"] and not result["candidate"]["rollouts"]:
        raise RollforgeError(
            "neither side holds a usable rollout", hint="check the paths with rollforge inspect"
        )
    if args.html:
        write_html(result, args.html)
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        print_json(result)
    else:
        render(result, Console())
    if not result["n_paired"]:  # each side's numbers are shown above; a comparison there is not
        raise RollforgeError(
            "no prompt is in both runs: nothing to compare",
            hint="run the candidate on the baseline's tasks (same prompts, system prompt and tools): "
            "rollforge collect TASKS ... -o after.jsonl",
        )
    return 0
