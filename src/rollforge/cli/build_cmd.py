"""``rollforge build``: a versioned, validated training-data release from rollouts (or from a recipe)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from rollforge import api
from rollforge.cli.common import add_command, print_json
from rollforge.cli.corpus_tables import print_file_table, print_rejects_table
from rollforge.cli.options import (
    add_filter_args,
    add_reasoning_arg,
    add_run_args,
    apply_run_args,
    suppress_defaults,
)
from rollforge.cli.summary import print_accounting
from rollforge.export.formats import DEFAULT_FORMATS, SFT_FORMATS
from rollforge.filters import OPTIONS as FILTER_OPTIONS
from rollforge.pairs import MARGIN_SCALES, STRATEGIES

DEFAULT_NAMES = [f.name for f in DEFAULT_FORMATS]
EXAMPLES = """\
  rollforge build rollouts/ -o releases                  # releases/v1 with SFT + DPO splits, report, manifest
  rollforge build rollforge.yaml                         # the same from a recipe (rollforge init writes one)
  rollforge build rollforge.yaml --min-reward 0.8 --version v2-strict   # flags override the recipe
  rollforge build runs/*.jsonl.zst -o releases --extra-formats openai,sharegpt --pairing all
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "build",
        help="build a versioned release: SFT + DPO splits, review sample, report, manifest",
        description="Reads the rollouts once and writes DIR/<version>/ (v1, v2, ... never overwritten): sft/ and dpo/ "
        "train/validation splits (split by prompt), other formats, review/sample.jsonl, rejected.jsonl, contaminated.jsonl (with --exclude-tasks), report.html, "
        "manifest.json, a Hugging Face dataset card (README.md) and trainer-configs/. Built in a hidden directory "
        "and renamed into place at the end: an interrupted build leaves no version behind. Flag names are the "
        "recipe's keys (--min-reward is min_reward; --labels is review_db). Defaults: success-only SFT, 10% of "
        "prompts held out, DPO best-worst with margin 0.1.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="a recipe .yaml, or rollouts files/directories/globs"
    )
    parser.add_argument("-o", "--output", help="releases directory (required without a recipe)")
    parser.add_argument("--version", help="release name (default: next v1, v2, ...)")
    parser.add_argument(
        "--val-fraction", type=float, help="share of prompts held out for validation (default 0.1)"
    )
    parser.add_argument(
        "--extra-formats",
        nargs="+",
        action="extend",
        metavar="FORMAT",
        help=f"formats written besides {' and '.join(f.name for f in DEFAULT_FORMATS)}, each in a folder "
        f"of its own: {', '.join(n for n in SFT_FORMATS if n not in DEFAULT_NAMES)} (space- or comma-separated)",
    )
    add_reasoning_arg(parser)
    parser.add_argument("--dpo", action=argparse.BooleanOptionalAction, help="write DPO pairs (default: yes)")
    parser.add_argument("--pairing", choices=STRATEGIES, help="DPO pairing strategy (default: best-worst)")
    parser.add_argument(
        "--min-margin", type=float, help="DPO: chosen - rejected reward >= this (default: 0.1)"
    )
    parser.add_argument(
        "--margin-scale",
        choices=MARGIN_SCALES,
        help="DPO: absolute (reward units) or range (a fraction of each environment's reward range)",
    )
    parser.add_argument("--max-pairs-per-prompt", type=int, help="DPO: cap pairs per prompt")
    parser.add_argument(
        "--split-at-divergence",
        action=argparse.BooleanOptionalAction,
        help="DPO: move the shared start of both sides into the prompt",
    )
    parser.add_argument(
        "--kto",
        action=argparse.BooleanOptionalAction,
        help="write a kto config: TRL's unpaired preference rows, successes desirable, failures undesirable "
        "(default: no; reads the inputs a second time)",
    )
    parser.add_argument(
        "--undesirable-below",
        type=float,
        metavar="REWARD",
        help="KTO: label false only a failure with reward below this (default: every rollout not a success)",
    )
    parser.add_argument(
        "--recollect",
        metavar="FILE",
        help="DPO: write the prompts left without a pair to FILE as NeMo Gym task rows (rollforge collect)",
    )
    parser.add_argument(
        "--strata", help="review sample strata UPPER:COUNT,... (default 0.5:10,0.8:20,inf:20)"
    )
    parser.add_argument(
        "--fail-on-warn",
        action=argparse.BooleanOptionalAction,
        help="exit 1 when a report check warns (the release is still written; thresholds: the recipe's "
        "checks: map)",
    )
    parser.add_argument(
        "--checks",
        type=_thresholds,
        metavar="NAME=VALUE,...",
        help="report thresholds, e.g. min_sft_rows=200,max_task_share=0.6 (the recipe's checks: map)",
    )
    parser.add_argument(
        "--sample-by-env",
        action=argparse.BooleanOptionalAction,
        help="draw each review-sample stratum within each environment (default: no)",
    )
    add_filter_args(parser)
    add_run_args(parser, pairs=True)
    suppress_defaults(parser)
    parser.set_defaults(func=run)


def _thresholds(text: str) -> dict[str, float]:
    """``min_sft_rows=200,max_task_share=0.6`` as a dict (the names are checked with the recipe)."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r} is not NAME=NUMBER (e.g. min_sft_rows=200)")
    return out


def recipe_keys(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given, as recipe keys (a filter option's recipe key may differ from its flag: --labels is
    review_db)."""
    given = {k: v for k, v in vars(args).items() if k not in ("func", "command", "paths", "json", "quiet")}
    for option in FILTER_OPTIONS:
        if option.name in given:
            given[option.recipe_key] = given.pop(option.name)
    return given


def run(args: argparse.Namespace) -> int:
    args.json, args.quiet = getattr(args, "json", False), getattr(args, "quiet", False)
    args_run = argparse.Namespace(json=args.json, quiet=args.quiet, workers=getattr(args, "workers", None))
    apply_run_args(args_run)
    if len(args.paths) == 1 and args.paths[0].endswith((".yaml", ".yml")):
        release = api.build(args.paths[0], **recipe_keys(args))
    else:
        release = api.build(inputs=args.paths, **recipe_keys(args))
    summary = {
        "release": str(release.path),
        "manifest": str(release.path / "manifest.json"),
        "report": str(release.path / "report.html"),
        "accounting": release.manifest["accounting"],
        "outputs": release.outputs,
        "warnings": release.manifest.get("warnings", []),
    }
    failed = bool(summary["warnings"]) and bool(release.manifest["recipe"].get("fail_on_warn"))
    if args.json:
        print_json(summary)
        return 1 if failed else 0
    acc = release.manifest["accounting"]
    print_accounting(
        {**acc, **acc["sft"]},
        f"SFT ({acc['sft']['train']} train / {acc['sft']['validation']} validation)",
        "",
    )
    if "dpo" in acc:
        print_accounting({**acc, **acc["dpo"]}, "DPO", "")
    if "kto" in acc:
        print_accounting(
            {**acc, **acc["kto"]},
            f"KTO ({acc['kto']['train']} train / {acc['kto']['validation']} validation)",
            "",
        )
    # The summary on stderr, beside the accounting tables; stdout names what was written.
    notes, console = Console(stderr=True), Console()
    inventory = release.manifest.get("inventory") or {}
    print_file_table(notes, inventory.get("per_file") or {})
    print_rejects_table(notes, inventory.get("rejected_by_reason") or {})
    _print_no_pairs(notes, acc, release.path)
    _print_lengths(notes, release.manifest.get("sequence_lengths") or {})
    for warning in summary["warnings"]:
        notes.print(f"[yellow]warning:[/] {escape(warning)}")
    console.print(f"release  [bold]{release.path}[/]")
    console.print(f"report   {release.path / 'report.html'}")
    console.print(f"manifest {release.path / 'manifest.json'}")
    if failed:
        n = len(summary["warnings"])
        checks = "1 report check warns" if n == 1 else f"{n} report checks warn"
        print(f"rollforge: error: {checks} (--fail-on-warn): see the warnings above", file=sys.stderr)
        return 1
    return 0


def _print_no_pairs(console: Console, acc: dict[str, Any], path: Any) -> None:
    """A release without DPO pairs says so (and how to get some): it has no DPO trainer config."""
    from rich.markup import escape

    from rollforge.empty import recollect_note, why_empty

    dpo = acc.get("dpo")
    if dpo is not None and dpo.get("recollect") and dpo["written"]:  # else the warning below says it
        console.print(f"recollect: {escape(recollect_note(dpo['recollect']))}")
    if dpo is None or dpo["written"]:
        return
    _, fix = why_empty({**acc, **dpo, "filtered": {}, "rejected": {}}, "DPO", str(path))
    console.print(f"[yellow]warning:[/] no DPO pairs, so no DPO trainer config: {escape(fix)}")


def _print_lengths(console: Console, lengths: dict[str, Any]) -> None:
    """The sequence length the trainer configs set, and the rows it cuts (in yellow when it cuts any)."""

    from rollforge.report.lengths import counted_note, describe_length

    for kind in ("sft", "dpo", "kto"):
        if kind in lengths:
            entry = lengths[kind]
            line = escape(describe_length(entry, "pairs" if kind == "dpo" else "rows"))
            console.print(f"{kind.upper()} max length: " + (f"[yellow]{line}[/]" if entry["cut"] else line))
    if lengths:
        console.print(escape(counted_note(lengths["counted"])) + " Set in trainer-configs/.")
