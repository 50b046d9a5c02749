"""``rollforge example``: write the generated example corpus (demo, tests, benchmarks)."""

from __future__ import annotations

import argparse
from typing import Any

from rollforge.cli.common import add_command, print_json
from rollforge.example import write_example, write_heldout_tasks

EXAMPLES = """\
  rollforge example -o examples/rollouts
  rollforge example -o /tmp/big --rollouts 200000      # a few hundred MB, for benchmarks
  rollforge example -o /tmp/ex --heldout-tasks heldout.jsonl  # + 20 evaluation tasks for rollforge collect
  rollforge example --task reverse -o toy  # the toy task for `rollforge iterate` (see docs/loop.md)
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "example",
        help="write a generated example corpus of NeMo Gym rollouts",
        description="Write three environments' rollouts (multi-step tool calling, reasoning, multi-turn with "
        "user turns inside the output) with companion files and a few bad lines, deterministically.",
        examples=EXAMPLES,
    )
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write into")
    parser.add_argument(
        "--task",
        choices=("rollouts", "reverse"),
        default="rollouts",
        help="rollouts: the example corpus (default); reverse: the toy digit-reversal task a tiny model learns "
        "(biased demonstrations, training and held-out tasks, an untrained digit-level model, an iterate "
        "recipe)",
    )
    parser.add_argument(
        "--rollouts", type=int, default=480, help="rollouts in all (default: 480, the bundled example)"
    )
    parser.add_argument("--repeats", type=int, default=4, help="rollouts per task (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--no-bad-lines", action="store_true", help="leave out the deliberately bad lines")
    parser.add_argument(
        "--heldout-tasks",
        metavar="FILE",
        help="also write held-out math tasks for `rollforge collect` (NeMo Gym input rows, none of them a "
        "prompt of the corpus)",
    )
    parser.add_argument(
        "--heldout-count",
        type=int,
        metavar="N",
        help="held-out tasks to write (default: 20; 256 for --task reverse)",
    )
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.task == "reverse":
        return run_toy(args)
    counts = write_example(
        args.output,
        rollouts=args.rollouts,
        repeats=args.repeats,
        seed=args.seed,
        bad_lines=not args.no_bad_lines,
    )
    summary: dict[str, Any] = {"output": args.output, "rollouts": counts}
    if args.heldout_tasks:
        written = write_heldout_tasks(args.heldout_tasks, n=args.heldout_count or 20, seed=args.seed)
        summary["heldout_tasks"] = {"path": args.heldout_tasks, "tasks": written}
    if args.json:
        print_json(summary)
        return 0
    print(
        f"wrote {sum(counts.values())} rollouts to {args.output}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
    if args.heldout_tasks:
        print(f"wrote {summary['heldout_tasks']['tasks']} held-out tasks to {args.heldout_tasks}")
    return 0


def run_toy(args: argparse.Namespace) -> int:
    from rollforge.toy import ToySets, write_toy, write_toy_loop

    summary = write_toy(args.output, ToySets(heldout_tasks=args.heldout_count or 256, seed=args.seed))
    summary |= write_toy_loop(args.output, seed=args.seed)
    if args.json:
        print_json(summary)
        return 0
    for name, words in (
        ("demos", "demos"),
        ("train_tasks", "training tasks"),
        ("heldout_tasks", "held-out tasks"),
    ):
        print(f"wrote {summary[name]['rows']} {words} to {summary[name]['path']}")
    print(
        f"wrote the untrained model to {summary['untrained']}, its training config {summary['base_config']}"
    )
    print(f"wrote the iterate recipes {summary['recipe']} (SFT) and {summary['dpo_recipe']} (DPO)")
    return 0
