"""``rollforge review``: label rollouts in a local web app; ``rollforge review export``: labels as JSONL."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rollforge.cli.common import add_command
from rollforge.errors import RollforgeError
from rollforge.labels import export_labels
from rollforge.review.index import DEFAULT_STRATA

EXAMPLES = """\
  rollforge review rollouts/ --db review.sqlite             # open the URL it prints; press ? for keys
  rollforge review releases/v1 --db pairs.sqlite            # a release's DPO pairs, chosen beside rejected
  rollforge review dpo.jsonl --db pairs.sqlite              # a DPO file: trl, nemo-rl or openai format
  rollforge review a.jsonl b.jsonl --db review.sqlite --strata 0.3,0.7 --reviewer alice
  rollforge review rollouts/ --db review.sqlite --host 0.0.0.0 --token $(openssl rand -hex 16)
  rollforge review export --db review.sqlite -o labels.jsonl
"""


def _strata(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated rewards like 0.5,0.8, got {text!r}"
        ) from None
    if list(values) != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"thresholds must increase, got {text!r}")
    return values


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "review",
        help="label rollouts accept / reject / flag in a local web app (labels in SQLite)",
        description="Serve a keyboard-first review app over rollouts files: a filtered list (reward stratum, "
        "task type, label; each row with its prompt, turns, tool calls and length) with progress, and a "
        "conversation view with tool calls, JSON tool outputs decoded and indented, reasoning (hidden or "
        "encrypted reasoning marked) and metadata; N jumps to the next unlabelled one. Given a DPO file "
        "(trl, nemo-rl or openai format) or a release directory (its dpo/ split) it shows pairs instead, "
        "chosen beside rejected, labelled under the pair's id. Labels go to an SQLite file (--db) with their "
        "history; `rollforge review export` writes them as JSONL, and the SFT/DPO filters read them. Listens "
        "on 127.0.0.1; any other --host needs --token (then every request must carry it).",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="rollouts files, directories or globs; DPO files or a release directory; or `export`",
    )
    parser.add_argument("--db", required=True, metavar="FILE", help="labels database (created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    parser.add_argument(
        "--reviewer", metavar="NAME", help="name stored with each label (default: your user name)"
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help="access token every request must carry (required with a --host other than loopback)",
    )
    parser.add_argument(
        "--strata",
        type=_strata,
        default=DEFAULT_STRATA,
        metavar="T1,T2",
        help="reward thresholds of the list's strata, margin thresholds for pairs "
        "(default: 0.5,0.8: < 0.5, [0.5, 0.8), >= 0.8)",
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="with `export`: the JSONL file to write (- for stdout)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.paths[0] == "export":
        return _export(args)
    if args.output:
        raise RollforgeError(
            "-o/--output is for `rollforge review export`", hint="drop -o to serve the review app"
        )
    from rollforge.review.server import ServeOptions, serve

    options = ServeOptions(args.paths, args.db, args.host, args.port, args.reviewer, args.token, args.strata)
    try:
        return serve(options)
    except KeyboardInterrupt:
        return 0  # the normal way to stop a server; every label is already committed


def _export(args: argparse.Namespace) -> int:
    if len(args.paths) > 1:
        raise RollforgeError("`rollforge review export` takes no paths", hint="only --db and -o")
    if not args.output:
        raise RollforgeError("`rollforge review export` needs -o FILE (or -o - for stdout)")
    from rollforge.io.target import prepare_output

    prepare_output(args.output, [args.db, args.db + "-wal"])  # never over the database it reads
    if args.output == "-":
        count = export_labels(args.db, sys.stdout.buffer)
    else:
        count = export_labels(args.db, args.output)
    print(f"exported {count} labels" + ("" if args.output == "-" else f" to {args.output}"), file=sys.stderr)
    return 0
