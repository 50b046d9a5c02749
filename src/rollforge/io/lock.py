"""An exclusive lock on an output a run appends to, held for the whole run (``rollforge collect``): a second
run on the same output is refused with one line naming the run that holds it.

The lock is ``flock`` on a hidden ``.NAME.lock`` beside the output: the kernel releases it when the holder
dies, even by SIGKILL, so a killed run never blocks the next one. The file says which run holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator

from rollforge.errors import RollforgeError


@contextlib.contextmanager
def output_lock(path: str, command: str) -> Iterator[None]:
    """Hold the lock of ``path`` for the block; raise a RollforgeError if another run holds it."""
    lock = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.lock")
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    fd = _acquire(lock, path, command)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)  # before letting go: a run waiting on this file then finds it gone and retries
        os.close(fd)


def _acquire(lock: str, path: str, command: str) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 256).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RollforgeError(
                f"{path} is being written by another `rollforge {command}` run ({holder})",
                hint="wait for it to finish, or write to another file",
            ) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder finished and removed this file as we opened it: lock the new one
