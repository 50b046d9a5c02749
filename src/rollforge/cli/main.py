"""Entry point: builds the argument parser from the command modules and renders errors as one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from rollforge.errors import RollforgeError
from rollforge.version import __version__

# Command modules, in the order `rollforge --help` lists them. Each exposes
# add_parser(subparsers) which registers its sub-command and sets `func` to a run(args) -> int.
COMMANDS = [
    "inspect",
    "sft",
    "dpo",
    "sample",
    "init",
    "build",
    "report",
    "diff",
    "review",
    "train",
    "collect",
    "compare",
    "iterate",
    "example",
]

DESCRIPTION = """\
rollforge turns NeMo Gym rollouts into SFT and DPO training data, and proves whether training helped.

typical loop:
  rollforge inspect rollouts/                  what is in these files?
  rollforge build rollouts/ -o releases/       filtered SFT + DPO splits, report, manifest
  rollforge train sft --model M --data releases/v1 -o runs/sft
  rollforge collect tasks.jsonl --base-url http://127.0.0.1:8000/v1 --model M --verifier math -o after.jsonl
  rollforge compare before.jsonl after.jsonl   did it help? (paired bootstrap CI, p-value)

Every command takes --help with examples.
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; with ``only``, just that command (its module alone is imported: a faster start)."""
    parser = argparse.ArgumentParser(
        prog="rollforge", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"rollforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [only] if only in COMMANDS else COMMANDS:
        try:
            module = import_module(f"rollforge.cli.{name}_cmd")
        except ModuleNotFoundError as exc:  # a command whose module is not written yet
            if exc.name != f"rollforge.cli.{name}_cmd":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(command)  # an unknown command gets the whole parser, and its list of commands
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RollforgeError as exc:
        print(f"rollforge: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`rollforge inspect --json | head`): nothing left to say
        _silence_stdout()
        return 0
    except OSError as exc:  # a disk that is full, a directory we may not write: say what and where
        where = f": {exc.filename}" if exc.filename else ""
        print(f"rollforge: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rollforge: interrupted; no partial output was left behind", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of what the closed pipe did not take
    does not fail again (and print a traceback) on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
