"""Helpers shared by the command modules: parser formatting and JSON output."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson


def add_command(sub: Any, name: str, help: str, description: str, examples: str) -> argparse.ArgumentParser:
    """Register a sub-command whose --help shows a description and worked examples."""
    return sub.add_parser(
        name,
        help=help,
        description=description,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def print_json(obj: Any) -> None:
    """One JSON object on stdout (for --json)."""
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()
