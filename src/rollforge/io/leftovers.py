"""The hidden files a run keeps beside its outputs while it works (spill directories, ``.partial`` files and
directories, version reservations) carry the host and pid of the run in their names: ``.rf~HOST~PID~``.

A run killed with SIGKILL cannot remove them, so every command first sweeps its output directory: a
leftover of a run of this host whose process is gone is removed. Leftovers of live runs, of other hosts
(a shared filesystem) and without a tag (not ours) are never touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
from pathlib import Path

_TAG = re.compile(r"\.rf~(?P<host>[^~/]+)~(?P<pid>\d+)~")


def tag() -> str:
    """What a leftover's name carries: this host and this process (a forked worker has its own pid)."""
    return f".rf~{socket.gethostname()}~{os.getpid()}~"


def owner(name: str) -> tuple[str, int] | None:
    """(host, pid) named by a leftover (or by a reservation link's target); None if it names none."""
    match = _TAG.search(name)
    return (match["host"], int(match["pid"])) if match else None


def alive(pid: int) -> bool:
    """Whether a process of this pid runs on this host (one of another user counts: it runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_run(name: str) -> bool:
    """Whether ``name`` is a leftover of a run of this host that is no longer running."""
    found = owner(name)
    return found is not None and found[0] == socket.gethostname() and not alive(found[1])


def sweep(directory: str | os.PathLike[str]) -> list[str]:
    """Remove the leftovers of dead runs of this host in ``directory``; the names removed."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:  # not there yet, or not ours to list: nothing to sweep
        return removed
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        name = entry.name
        if entry.is_symlink():  # a version reservation: its target names the run
            with contextlib.suppress(OSError):
                name = os.readlink(entry.path)
        if not dead_run(name):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
        removed.append(entry.name)
    return removed


def leftover_prefix(name: str) -> str:
    """The start of a leftover's name for ``name`` (``.sft.jsonl.rf~host~pid~``): mkstemp adds the rest."""
    return f".{Path(name).name}{tag()}"
