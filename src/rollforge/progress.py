"""Progress bars on stderr, shown only on a terminal and never with --quiet."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

T = TypeVar("T")

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn progress bars off for the rest of the process (the CLI's --quiet)."""
    global _quiet
    _quiet = quiet


def enabled() -> bool:
    return not _quiet and sys.stderr.isatty()


class _Count(ProgressColumn):
    """``1,234 rollouts`` (``1,234/5,000 rows`` with a total), the unit from the task's ``unit`` field."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "items")
        done = f"{int(task.completed):,}"
        return Text(f"{done}/{int(task.total):,} {unit}" if task.total else f"{done} {unit}")


class _Rate(ProgressColumn):
    """Items a second, with the unit: ``12,345 rollouts/s``."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} {task.fields.get('unit', 'items')}/s")


class _Rollouts(ProgressColumn):
    """Beside a bar over bytes: the rollouts read so far and their rate (the ``rollouts`` field)."""

    def render(self, task: Task) -> Text:
        rollouts = task.fields.get("rollouts")
        if rollouts is None:
            return Text("")
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = f", {rollouts / elapsed:,.0f}/s" if elapsed else ""
        return Text(f"{rollouts:,} rollouts{rate}")


def _bar(*columns: ProgressColumn) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        *columns,
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled(),
        transient=True,
    )


def progress_bar() -> Progress:
    """A rich Progress on stderr with counts in their unit (a task's ``unit`` field: rows, pairs, files),
    the rate and the time left; disabled (draws nothing) when not on a TTY or when quiet."""
    return _bar(_Count(), _Rate())


def bytes_bar() -> Progress:
    """A progress bar over input bytes: MB read of the total, MB/s, the rollouts read (the task's
    ``rollouts`` field) and their rate, the time left."""
    return _bar(DownloadColumn(binary_units=False), TransferSpeedColumn(), _Rollouts())


def track(
    items: Iterable[T], description: str, total: float | None = None, unit: str = "rows"
) -> Iterator[T]:
    """Iterate with a progress bar counting ``unit`` (stderr, TTY only)."""
    if not enabled():
        yield from items
        return
    with progress_bar() as bar:
        task = bar.add_task(description, total=total, unit=unit)
        for item in items:
            yield item
            bar.advance(task)


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A step whose length is not known ahead: one line on stderr saying what it works on (put the units
    in ``message``), replaced by the time it took when it ends (TTY only). No spinner: a spinner is a
    thread, and a process running a thread cannot fork the workers the step may use (rollforge.parallel)."""
    if not enabled():
        yield
        return
    console = Console(stderr=True)
    started = time.monotonic()
    console.print(f"{escape(message)} …", end="\r", soft_wrap=True, overflow="ellipsis", no_wrap=True)
    try:
        yield
    finally:
        took = time.monotonic() - started
        console.print(f"\x1b[2K{escape(message)}: {took:.1f} s", soft_wrap=True, highlight=False)
