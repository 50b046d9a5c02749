"""``rollforge init``: write a commented starter recipe."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rollforge.cli.common import add_command
from rollforge.errors import RollforgeError

EXAMPLES = """\
  rollforge init                      # writes ./rollforge.yaml
  rollforge init my-recipe.yaml && $EDITOR my-recipe.yaml && rollforge build my-recipe.yaml
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "init",
        help="write a commented starter rollforge.yaml",
        description="Write a starter build recipe with every key explained.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "path", nargs="?", default="rollforge.yaml", help="where to write it (default: rollforge.yaml)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if os.path.exists(args.path) and not args.force:
        raise RollforgeError(f"{args.path} already exists", hint="pass --force to overwrite it")
    from rollforge.build.starter import starter  # the recipe's pydantic model: imported only here

    with open(args.path, "w") as fh:
        fh.write(starter())
    print(f"wrote {args.path}; edit `inputs:` and run: rollforge build {args.path}")
    return 0
