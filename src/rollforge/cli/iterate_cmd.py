"""``rollforge iterate RECIPE``: rounds of collect -> build -> train -> evaluate -> compare (rollforge.loop)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from rollforge import progress
from rollforge.cli.common import add_command, print_json

DESCRIPTION = """\
The improvement loop, round after round: collect rollouts of the current model on the training tasks (K
samples each), build releases/vN from them (success-only SFT rows, or best-worst DPO pairs), train
models/agent_vN, collect its rollouts on the held-out tasks, and compare them with the round before (paired
95% CI, p-value). Round 0 evaluates the base model. Prints and writes (OUTPUT/iterate.md, iterate.json) a
table per round: data size, train loss, held-out reward with its CI, the change, wall time per step.

Resumable: every finished step leaves OUTPUT/rounds/N/<step>.done.json; killed at any point (kill -9
included), the same command carries on where it stopped, keeping every collected row.

Generation goes through `transformers serve`, which iterate starts and stops for each model (collect.mode:
serve, the default); collect.mode: base_url uses a running server; collect.mode: local generates in this
process, a batch of prompts at a time (for small models: ~100x faster than through a server).
--control shuffles the rewards of the training rollouts before filtering: the same loop, data picked
regardless of reward, to tell learning from the reward apart from more training.
"""

EXAMPLES = """\
  rollforge example --task reverse -o toy   # toy task: demos, tasks, untrained model, configs, recipes
  rollforge train sft --model toy/untrained --data toy/demos.jsonl -o toy/base --config toy/base_config.yaml
  rollforge iterate toy/loop.yaml                           # 2 rounds of SFT on success-only rollouts
  rollforge iterate toy/loop.yaml --control -o toy/control  # the control arm: rewards shuffled
  rollforge iterate toy/loop_dpo.yaml                       # best-worst DPO pairs from the same samples
  rollforge iterate toy/loop.yaml --serve -o toy/served     # through transformers serve, started by iterate
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub, "iterate", "run the improvement loop: collect, build, train, evaluate, compare", DESCRIPTION,
        EXAMPLES,
    )  # fmt: skip
    parser.add_argument(
        "recipe",
        metavar="RECIPE",
        help="iterate recipe (YAML: base_model, train_tasks, heldout_tasks, output, rounds, samples, "
        "method, collect, build, train; docs/loop.md shows one)",
    )
    parser.add_argument("-o", "--output", metavar="DIR", help="output directory (overrides the recipe's)")
    parser.add_argument("--rounds", type=int, help="number of rounds (overrides the recipe's)")
    parser.add_argument("--method", choices=("sft", "dpo"), help="train on SFT rows or DPO pairs")
    parser.add_argument("--control", action="store_true", help="shuffle rewards before filtering")
    parser.add_argument("--seed", type=int, help="random seed (overrides the recipe's)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--serve", action="store_true", help="generate through `transformers serve`")
    where.add_argument("--local", action="store_true", help="generate in this process (small models)")
    where.add_argument(
        "--base-url", metavar="URL", help="generate through a running OpenAI-compatible server"
    )
    parser.add_argument("--json", action="store_true", help="print the result (iterate.json) as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("output", "rounds", "method", "seed")
    found = {key: getattr(args, key) for key in keys if getattr(args, key) is not None}
    if args.control:
        found["control"] = True
    return found


def run(args: argparse.Namespace) -> int:
    from rollforge.loop import iterate, load_iterate_recipe

    quiet = args.quiet or args.json
    progress.set_quiet(quiet)
    recipe = load_iterate_recipe(args.recipe, _overrides(args))
    if args.serve or args.local:
        recipe.collect.mode = "serve" if args.serve else "local"
    elif args.base_url:
        recipe.collect.mode, recipe.collect.base_url = "base_url", args.base_url

    def report(line: str) -> None:
        if not quiet:
            print(f"rollforge iterate: {line}", file=sys.stderr, flush=True)

    # The trainer prints its logs to stdout; keep stdout for the table or the --json object.
    with contextlib.redirect_stdout(sys.stderr):
        result = iterate(recipe, report)
    if args.json:
        print_json(result)
    else:
        from rollforge.loop.table import markdown_table

        print(markdown_table(result), end="")
    return 0
