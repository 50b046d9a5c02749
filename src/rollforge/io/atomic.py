"""Atomic output: write to a temporary sibling, rename into place only when complete.

A crash (or Ctrl-C, or a kill) therefore never leaves a half-written dataset behind: the reader of
``out.jsonl`` sees either the previous file or the complete new one. The temporary names carry the host
and pid of the run (see ``rollforge.io.leftovers``), so that what a killed run leaves is swept later.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from rollforge.io.leftovers import leftover_prefix


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary file for writing that appears at ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=leftover_prefix(target.name), suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode(0o666))  # mkstemp makes 0600; a dataset should be as readable as any new file
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _mode(base: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask & (stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a directory in a hidden temporary sibling; rename it to ``path`` when the block succeeds.

    The target must not exist (releases are never overwritten). On any error the temporary
    directory is removed, so nothing is left behind.
    """
    target = Path(path)
    if target.exists():
        raise FileExistsError(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=leftover_prefix(target.name), suffix=".partial", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, _mode(0o777))
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
