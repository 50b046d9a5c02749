"""Terminal tables of a corpus, for ``inspect`` and ``build``: one row per input file, and the rejected lines
with ``file:line`` first. Both stay readable at 80 columns: paths are shown relative to the folder the files
share (named in the title) and long names are shortened in the middle, so the extension and the line number
always show."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

NAME_WIDTH = 34  # a file column this wide leaves room for the numbers at 80 columns
MAX_FILE_ROWS = 40


def shorten(name: str, width: int = NAME_WIDTH) -> str:
    """``name`` cut in the middle to ``width`` characters (its end, with the extension, kept whole)."""
    if len(name) <= width:
        return name
    tail = max(8, width // 2)
    return name[: width - tail - 1] + "…" + name[-tail:]


def short_paths(paths: list[str]) -> tuple[str, dict[str, str]]:
    """(the folder every path is under, or "", each path relative to it and shortened)."""
    local = [p for p in paths if p != "-" and "://" not in p]
    folder = ""
    if local and len(local) == len(paths):
        # as the user named them: relative paths stay relative (the folder as typed), else absolute
        named = paths if not any(os.path.isabs(p) for p in paths) else [os.path.abspath(p) for p in paths]
        folder = os.path.commonpath([os.path.dirname(p) or "." for p in named])
        paths_in = dict(zip(paths, named, strict=True))
    shown = {}
    for path in paths:
        rel = os.path.relpath(paths_in[path], folder) if folder else path
        shown[path] = shorten(rel)
    return folder, shown


def _reward_range(row: dict[str, Any]) -> str:
    low, high = row["reward"]["min"], row["reward"]["max"]
    if low is None:
        return "-"
    return f"{low:.4g}" if low == high else f"{low:.4g} .. {high:.4g}"


def print_file_table(console: Console, per_file: dict[str, dict[str, Any]]) -> None:
    """One row per input file: rollouts, rejected lines, reward range (files that gave no rollout in
    yellow)."""
    if not per_file:
        return
    folder, shown = short_paths(list(per_file))
    title = f"files ({len(per_file)})" + (f" in {escape(folder)}" if folder else "")
    table = Table(title=title, title_justify="left")
    table.add_column("file", no_wrap=True)
    table.add_column("rollouts", justify="right")
    table.add_column("rejected", justify="right")
    table.add_column("reward", no_wrap=True)
    # Files with a problem first (nothing usable, then the most rejects), the rest in input order; at most
    # MAX_FILE_ROWS rows (a corpus of thousands of shards has every row in --json and the manifest).
    order = sorted(per_file, key=lambda p: (bool(per_file[p]["rollouts"]), -per_file[p]["rejected"]))
    for path in order[:MAX_FILE_ROWS]:
        row = per_file[path]
        style = "yellow" if not row["rollouts"] else None
        table.add_row(
            escape(shown[path]), str(row["rollouts"]), str(row["rejected"]), _reward_range(row), style=style
        )
    empty = sum(1 for row in per_file.values() if not row["rollouts"])
    console.print(table)
    if len(order) > MAX_FILE_ROWS:
        console.print(
            f"and {len(order) - MAX_FILE_ROWS} more files (every one is in --json and the manifest)"
        )
    if empty:
        console.print(f"[yellow]{empty} of {len(per_file)} files gave no rollout[/]: see the rejected lines")


def print_rejects_table(console: Console, by_reason: dict[str, dict[str, Any]]) -> None:
    """The rejected lines by reason: a few examples each, ``file:line`` first (never cut), then the message.
    On a wide terminal the message sits beside its place; on a narrow one under it, with the full width."""
    if not by_reason:
        return
    files = sorted({e["file"] for entry in by_reason.values() for e in entry.get("example_lines", ())})
    folder, shown = short_paths(files)
    total = sum(entry["count"] for entry in by_reason.values())
    console.print(f"[bold]rejected lines[/] ({total})" + (f", files in {escape(folder)}" if folder else ""))
    wide = console.width >= 120
    for reason, entry in by_reason.items():
        examples = entry.get("example_lines", ())
        more = f", first {len(examples)}" if entry["count"] > len(examples) else ""
        lines = f"{entry['count']} line" + "s" * (entry["count"] != 1)
        console.print(f"  [yellow]{reason}[/]: {lines}{more}")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for example in examples:
            where = escape(f"{shown[example['file']]}:{example['line']}")
            message = escape(_brief(example["message"]))
            if wide:
                grid.add_row("    " + where, message)
            else:
                console.print("    " + where, no_wrap=True, overflow="ellipsis")
                console.print(Padding(message, (0, 0, 0, 8)))
        if wide:
            console.print(grid)


def _brief(message: str, limit: int = 160) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"
