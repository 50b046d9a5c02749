"""Helpers shared by the command modules: parser formatting and JSON output."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from typing import Any

import orjson

from rollforge.errors import RollforgeError
from rollforge.limits import DEFAULT_MAX_LINE_BYTES, parse_size


def add_command(sub: Any, name: str, help: str, description: str, examples: str) -> argparse.ArgumentParser:
    """Register a sub-command whose --help shows a description and worked examples."""
    return sub.add_parser(
        name,
        help=help,
        description=description,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def print_json(obj: Any, output: str | None = None) -> None:
    """One JSON object on stdout (for --json); on stderr when the rows go to stdout (``-o -``)."""
    stream = sys.stderr if output == "-" else sys.stdout
    stream.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    stream.flush()


def add_max_line_bytes(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--max-line-bytes",
        type=_size,
        default=DEFAULT_MAX_LINE_BYTES,
        metavar="SIZE",
        help="reject a longer line (line_too_long) without holding it in memory; 256M, 1G, ... "
        "(default: 256M)",
    )


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except RollforgeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def api_keywords(args: argparse.Namespace, function: Callable[..., Any]) -> dict[str, Any]:
    """The flags of ``args`` that are keyword arguments of ``function`` (a flag's dest is its API keyword;
    a function that takes ``**filters`` gets every filter flag the command has)."""
    params = inspect.signature(function).parameters
    names = [name for name, p in params.items() if p.kind == p.KEYWORD_ONLY]
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        from rollforge.filters import OPTIONS

        names += [option.name for option in OPTIONS]
    return {name: getattr(args, name) for name in names if hasattr(args, name)}
