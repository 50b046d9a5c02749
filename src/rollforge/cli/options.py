"""Flags shared by the dataset commands (sft, dpo, sample, build): one definition, one meaning."""

from __future__ import annotations

import argparse

from rollforge import progress
from rollforge.engine.choose import ENGINES, Engine
from rollforge.errors import RollforgeError
from rollforge.export.formats import FORMATS
from rollforge.export.messages import REASONING_MODES
from rollforge.filters import FilterOptions, filter_options


def add_run_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--workers", type=int, default=None, help="processes to use (default: all cores)")
    group.add_argument("--seed", type=int, default=0, help="seed for every random choice (default: 0)")
    group.add_argument(
        "--json", action="store_true", help="print the accounting as one JSON object on stdout"
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    group.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: all cores of this machine; ray: Ray Data on a cluster (extra: rollforge[ray])",
    )
    group.add_argument(
        "--memory-budget",
        type=float,
        metavar="MB",
        help="memory for DPO grouping; a larger index is grouped in buckets on disk (default: no limit)",
    )
    group.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="connect to this Ray cluster (e.g. auto, ray://head:10001); default: start one locally",
    )


def engine_from_args(args: argparse.Namespace) -> Engine:
    return Engine(
        getattr(args, "engine", "local"),
        getattr(args, "workers", None),
        getattr(args, "ray_address", None),
        getattr(args, "memory_budget", None),
    )


def add_filter_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("quality filters (each drop is counted under its reason)")
    g.add_argument("--min-reward", type=float, help="drop rollouts with reward below this")
    g.add_argument("--max-reward", type=float, help="drop rollouts with reward above this")
    g.add_argument(
        "--success-threshold",
        type=float,
        default=1.0,
        help="success means reward >= this (default: 1.0); real rollouts have no `success` field",
    )
    g.add_argument(
        "--success-field", metavar="NAME", help="success means this field is truthy (e.g. is_correct)"
    )
    g.add_argument(
        "--success-only",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="keep successful rollouts only",
    )
    g.add_argument(
        "--min-task-success-rate",
        type=float,
        metavar="R",
        help="keep rollouts of prompts whose success rate over their rollouts is >= R",
    )
    g.add_argument("--min-items", type=int, help="min items in response.output (the tutorial's 'turns')")
    g.add_argument("--max-items", type=int, help="max items in response.output")
    g.add_argument("--min-turns", type=int, help="min assistant turns")
    g.add_argument("--max-turns", type=int, help="max assistant turns")
    g.add_argument("--require-tool-use", action="store_true", help="keep rollouts that call a tool")
    g.add_argument(
        "--drop-truncated",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="drop rollouts cut off by max_output_tokens (default: drop)",
    )
    g.add_argument(
        "--max-tokens", type=int, help="max tokens of the rendered chat template (needs --tokenizer)"
    )
    g.add_argument("--tokenizer", metavar="PATH_OR_ID", help="tokenizer for --max-tokens")
    g.add_argument(
        "--where",
        metavar="EXPR",
        help="keep rollouts where EXPR holds, e.g. 'metadata.task_type == \"math\" and reward >= 0.7'",
    )
    g.add_argument(
        "--dedup", choices=("exact", "near"), help="drop duplicates (near: MinHash on assistant text)"
    )
    g.add_argument("--near-threshold", type=float, default=0.9, help="Jaccard threshold for --dedup near")
    g.add_argument("--labels", metavar="REVIEW_DB", help="drop rollouts a reviewer rejected (rollforge review)")  # fmt: skip


def suppress_defaults(parser: argparse.ArgumentParser) -> None:
    """Only flags actually given appear in the namespace (so they can override a recipe file's keys)."""
    for action in parser._actions:
        if action.dest != "help":
            action.default = argparse.SUPPRESS


def add_reasoning_arg(parser: argparse.ArgumentParser) -> None:
    defaults = "; ".join(
        f"{mode} for {'/'.join(f.name for f in FORMATS if f.reasoning == mode)}"
        for mode in REASONING_MODES
        if any(f.reasoning == mode for f in FORMATS)
    )
    parser.add_argument("--reasoning", choices=REASONING_MODES,
                        help="where reasoning goes: reasoning_content field, inline <think> tags, or dropped "
                        f"(default: {defaults})")  # fmt: skip


def filters_from_args(args: argparse.Namespace) -> FilterOptions:
    return filter_options(vars(args))


def apply_run_args(args: argparse.Namespace) -> None:
    progress.set_quiet(args.quiet or args.json)
    if args.workers is not None and args.workers < 1:
        raise RollforgeError("--workers must be at least 1")
