"""The accounting table every dataset-writing command prints (on stderr, so stdout stays for --json)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from rollforge.cli.environments import print_environments
from rollforge.tools import UNDECLARED, UNDECLARED_WARNING


def print_accounting(acc: dict[str, Any], title: str, output: str) -> None:
    console = Console(stderr=True)
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("input lines", str(acc["lines"]))
    table.add_row("  rollouts", str(acc["rollouts"]))
    for reason, n in acc["rejected"].items():
        table.add_row(f"  rejected: {reason}", str(n))
    label = "cannot be chosen" if "pairs" in acc else "filtered"
    for reason, n in acc.get("filtered", {}).items():
        table.add_row(f"  {label}: {reason}", str(n))
    if "pairs" in acc:
        table.add_row("prompts", str(acc["prompts"]))
        for reason, n in acc["unpaired"].items():
            table.add_row(f"  unpaired: {reason}", str(n))
        table.add_row("pairs", str(acc["pairs"]))
        for reason, n in acc.get("skipped", {}).items():
            table.add_row(f"  skipped: {reason}", str(n))
    for name, n in acc.get("export", {}).items():
        table.add_row(f"  note: {name}", str(n))
    table.add_row("[bold]written[/]", f"[bold]{acc['written']}[/]")
    for name in ("desirable", "undesirable"):
        if name in acc:
            table.add_row(f"  label {name == 'desirable'}: {name}", str(acc[name]))
    console.print(table)
    if "desirable" in acc and acc["written"] and not (acc["desirable"] and acc["undesirable"]):
        missing = "undesirable" if acc["desirable"] else "desirable"
        console.print(
            f"[yellow]warning:[/] no {missing} rows: KTO learns from both labels ({acc['label_rule']})"
        )
    if "success" in acc:
        console.print(success_line(acc))
    print_environments(acc, console)
    undeclared = acc.get("export", {}).get(UNDECLARED)
    if undeclared:
        console.print(f"[yellow]warning:[/] {undeclared} {UNDECLARED_WARNING}")
    print_same_file(acc, sys.stderr)
    if output:
        console.print(f"wrote {shown_output(output)}")


def success_line(acc: dict[str, Any]) -> str:
    """The success definition in force and what it does to the rows (``rollforge.pipeline.success_policy``)."""
    if acc.get("success_only"):
        return f"success: {acc['success']}; only successes kept (--no-success-only keeps every rollout)"
    return f"success: {acc['success']}; every rollout kept (--no-success-only)"


def print_same_file(acc: dict[str, Any], stream: TextIO) -> None:
    """A note for each input named twice (another path, a link): it was read once."""
    for entry in acc.get("same_file", ()):
        print(f"note: {entry['path']} is the same file as {entry['same_as']}: read once", file=stream)


def shown_output(output: str) -> str:
    return "standard output" if output == "-" else output
