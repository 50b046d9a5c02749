"""Entry point: builds the argument parser from the command modules and renders errors as one line."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import ClassVar, NoReturn

from rollforge.errors import RollforgeError, extra_missing
from rollforge.version import __version__
from rollforge.workers import hear_interrupts, was_interrupted

# Command modules, in the order `rollforge --help` lists them. Each exposes
# add_parser(subparsers) which registers its sub-command and sets `func` to a run(args) -> int.
COMMANDS = [
    "inspect",
    "sft",
    "dpo",
    "kto",
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
rollforge turns NeMo Gym rollouts into SFT, DPO and KTO training data, and proves whether training helped.

typical loop:
  rollforge inspect rollouts/                  what is in these files?
  rollforge build rollouts/ -o releases/       filtered SFT + DPO splits, report, manifest
  rollforge train sft --model M --data releases/v1 -o runs/sft
  rollforge collect tasks.jsonl --base-url http://127.0.0.1:8000/v1 --model M --verifier math -o after.jsonl
  rollforge compare before.jsonl after.jsonl   did it help? (paired bootstrap CI, p-value)

Every command takes --help with examples.
"""


class Parser(argparse.ArgumentParser):
    """argparse, with "did you mean" for a misspelled flag or command (Python 3.11's argparse has none)."""

    argv: ClassVar[list[str]] = []  # the command line being parsed (set by main)

    def error(self, message: str) -> NoReturn:
        known = option_strings(self)
        if message.startswith("unrecognized arguments: "):
            message += _suggest(message.split(": ", 1)[1].split(), known)
        elif message.startswith("argument COMMAND: invalid choice: "):
            given = message.split("'")[1] if "'" in message else ""
            message += _suggest([given], COMMANDS, prefix="")
        else:  # another error came first (a required flag "missing" because it was misspelled): name them too
            flags = [w for w in self.argv if w.startswith("--") and w.split("=", 1)[0] not in known]
            message += _suggest(
                [w for w in flags if not any(k.startswith(w.split("=", 1)[0]) for k in known)], known
            )
        super().error(message)


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag of ``parser`` and of its sub-commands (one is built when a command is given)."""
    found: list[str] = []
    for action in parser._actions:
        found += [s for s in action.option_strings if s.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found += option_strings(sub)
    return sorted(set(found))


def _suggest(given: list[str], known: list[str], prefix: str = "-") -> str:
    hints = []
    for word in given:
        if word.startswith(prefix):
            close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1, cutoff=0.6)
            if close:
                hints.append(f"{word}: did you mean {close[0]}?")
    return f" ({'; '.join(hints)})" if hints else ""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; with ``only``, just that command (its module alone is imported: a faster start)."""
    parser = Parser(
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


INTERRUPTED = 130  # the shell's code for a run stopped by SIGINT


def cli() -> None:
    """The ``rollforge`` command: :func:`main`, then exit. A run stopped by Ctrl-C has already removed its
    partial outputs and killed its workers when :func:`main` returns; it then leaves at once, skipping the
    interpreter's shutdown, which would join a process pool's manager thread that can block for ever on a
    result a killed worker had half written (a hang seen 1 time in 12), or abort on a daemon thread
    holding stderr's lock."""
    code = main()
    if code != INTERRUPTED:
        sys.exit(code)
    if "ray" in sys.modules:  # a local Ray cluster this run started is stopped by Ray's own exit hook
        with contextlib.suppress(Exception):
            sys.modules["ray"].shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(INTERRUPTED)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except (ImportError, RuntimeError) as exc:  # an optional extra not installed: the one-line install hint
        if was_interrupted():  # Ctrl-C inside an import surfaces as ImportError: it is an interruption
            return _interrupted()
        hint = extra_missing(exc)
        if hint is None:
            raise
        print(f"rollforge: error: {hint}", file=sys.stderr)
        return 1


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    Parser.argv = argv
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(command)  # an unknown command gets the whole parser, and its list of commands
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    hear_interrupts()
    try:
        return int(args.func(args) or 0)
    except RollforgeError as exc:
        if was_interrupted():
            return _interrupted()
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
        return _interrupted()


def _interrupted() -> int:
    print("rollforge: interrupted; no partial output was left behind", file=sys.stderr)
    return INTERRUPTED


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of what the closed pipe did not take
    does not fail again (and print a traceback) on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    cli()
