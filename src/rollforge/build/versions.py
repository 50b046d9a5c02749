"""Release names: ``v1``, ``v2``, ... (or ``--version NAME``), each reserved before the build starts, so
that two builds into one directory at the same time become two versions instead of colliding at the end.

A reservation is a symlink ``.NAME.reserved`` beside the releases: creating a symlink is atomic and fails if
the name exists, and its target names the build's host and pid (``rollforge.io.leftovers``), so the
reservation of a build that was killed is swept like its other leftovers.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from rollforge.errors import RollforgeError
from rollforge.io.leftovers import dead_run, tag

_NUMBERED = re.compile(r"\.?v(\d+)(?:\.reserved)?")


def next_version(root: Path) -> str:
    """One past the highest ``vN`` released or reserved under ``root``."""
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := _NUMBERED.fullmatch(p.name))]
    return f"v{max(numbers, default=0) + 1}"


@contextlib.contextmanager
def reserved_version(root: Path, name: str | None = None) -> Iterator[str]:
    """Reserve ``name`` (default: the next ``vN``) under ``root`` for the block; the reservation is removed
    afterwards, when the release is in place or has failed."""
    while True:
        version = name or next_version(root)
        link = root / f".{version}.reserved"
        try:
            os.symlink(tag(), link)
        except FileExistsError:
            if _stale(link):
                continue
            if name:
                raise RollforgeError(
                    f"release {root / name} is being built by another run ({_holder(link)})",
                    hint="pick another --version, or wait for that build",
                ) from None
            continue  # another build took this number: the next listing skips it
        if (root / version).exists():  # a build finished this version between the listing and the link
            link.unlink()
            if name:
                raise RollforgeError(
                    f"release {root / name} already exists",
                    hint="releases are never overwritten: pick another --version",
                )
            continue
        break
    try:
        yield version
    finally:
        with contextlib.suppress(FileNotFoundError):
            link.unlink()


def _stale(link: Path) -> bool:
    """Remove the reservation of a dead build of this host; True if it was one (or is already gone)."""
    try:
        if not dead_run(os.readlink(link)):
            return False
        link.unlink()
    except FileNotFoundError:
        pass
    return True


def _holder(link: Path) -> str:
    try:
        _, host, pid, _ = os.readlink(link).split("~", 3)
    except (OSError, ValueError):
        return "another process"
    return f"pid {pid} on {host}"
