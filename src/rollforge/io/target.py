"""Where a command writes (``-o``), checked before anything is read, so that an output never destroys:

- ``-`` is standard output;
- a path that is not a regular file (a named pipe, a device such as ``/dev/null``, ``/dev/stdout``) is written
  through, never replaced by a regular file;
- anything else is written atomically (``rollforge.io.atomic``);
- an output that is one of the inputs (the same device and inode, through any path or link) is refused.

Each command also sweeps the leftovers of dead runs from the directory it writes in.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from rollforge.errors import RollforgeError
from rollforge.io.atomic import atomic_file
from rollforge.io.leftovers import sweep
from rollforge.io.sources import STDIN, Discovery, file_identity

STDOUT = "-"
_SPECIAL = ("/dev/", "/proc/")  # /dev/stdout and /proc/self/fd/1 lead to whatever stdout is


def written_through(path: str) -> bool:
    """Standard output, or a path that is not (or does not lead to) a plain file of a directory."""
    if path == STDOUT or os.path.abspath(path).startswith(_SPECIAL):
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # not there yet: a new regular file
        return False


def work_directory(path: str) -> str:
    """Where a run writing ``path`` keeps its scratch files: beside it (same disk), or for an output
    written through, the temporary directory (never /dev)."""
    if written_through(path):
        return tempfile.gettempdir()
    return os.path.dirname(os.path.abspath(path))


def inputs_of(discovery: Discovery) -> list[str]:
    """Every file a run reads: rollouts and their companions."""
    return [s.path for s in discovery.sources] + [c.path for c in discovery.companions]


def named_files(paths: Iterable[str]) -> list[str]:
    """Every file the named paths can lead a reader to: files, everything under directories, glob matches."""
    found: list[str] = []
    for path in paths:
        names = sorted(glob.glob(path, recursive=True)) if glob.has_magic(path) else [path]
        for name in names:
            if os.path.isdir(name):
                found += [os.path.join(top, f) for top, _, files in os.walk(name) for f in files]
            else:
                found.append(name)
    return found


def check_output(path: str, inputs: Iterable[str]) -> None:
    """Refuse an output that is one of the inputs, before anything is read or written."""
    # As given, and as it will resolve once its missing directories are made (`x/../a.jsonl`).
    targets = {_output_identity(path), _output_identity(os.path.abspath(path))} - {None}
    if not targets:
        return
    for name in inputs:
        if file_identity(name) in targets:
            shown = "standard output" if path == STDOUT else path
            source = "standard input" if name == STDIN else name
            raise RollforgeError(
                f"the output {shown} is the input {source}: writing it would destroy what is being read",
                hint="write to another file",
            )


def _output_identity(path: str) -> tuple[int, int] | None:
    if path == STDOUT:
        try:
            st = os.fstat(sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            return None
        return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None
    return file_identity(path) if os.path.exists(path) else None


def prepare_output(path: str, inputs: Iterable[str] = ()) -> None:
    """Before a run: refuse an output that is an input, and sweep dead runs' leftovers where it writes."""
    check_output(path, inputs)
    sweep(work_directory(path))


@contextlib.contextmanager
def open_output(path: str) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` with: standard output, the pipe or device itself, or an atomic file."""
    if path == STDOUT:
        sys.stdout.flush()
        yield sys.stdout.buffer  # lent, not closed: the summary may follow on stderr, --json on stdout
        sys.stdout.buffer.flush()
        return
    if written_through(path):
        # Appending never truncates what /dev/stdout leads to (a file the shell opened with >>).
        with open(path, "ab") as fh:
            yield fh
        return
    with atomic_file(path) as fh:
        yield fh
