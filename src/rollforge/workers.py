"""Worker processes that never outlive the run that started them.

- Each worker asks the kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``; elsewhere a thread
  watches the parent), so a run killed with SIGKILL leaves no worker behind, blocked on a queue nobody
  reads.
- Workers ignore Ctrl-C: the parent hears it and kills them at once, instead of the pool waiting for every
  chunk already queued (a minute on a large input).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_interrupted = False


def hear_interrupts() -> None:
    """Ctrl-C raises KeyboardInterrupt as usual, and is also remembered: Python swallows a KeyboardInterrupt
    raised inside a weakref callback ("Exception ignored in ... _get_module_lock"), which an import running
    beside the read's workers hit 1 time in 30, and the build then finished as if nothing was asked.
    :func:`raise_if_interrupted` turns a swallowed one back into an interruption."""
    global _interrupted
    _interrupted = False
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)


def _on_sigint(signum: int, frame: Any) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def was_interrupted() -> bool:
    """Ctrl-C came since :func:`hear_interrupts` (an error raised after it is its consequence: a C extension
    interrupted while it was imported says "ImportError: initialization failed")."""
    return _interrupted


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C came since :func:`hear_interrupts` (called before committing work)."""
    if _interrupted:
        raise KeyboardInterrupt


def worker_init(
    parent: int, initializer: Callable[..., object] | None = None, initargs: tuple[Any, ...] = ()
) -> None:
    """The initializer of every worker process (``parent`` is the pid of the process that starts it), then
    the pool's own ``initializer(*initargs)``, if any."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not _death_signal():
        threading.Thread(target=_watch, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the death signal was asked for
        os._exit(1)
    if initializer is not None:
        initializer(*initargs)


def _death_signal() -> bool:
    """Ask Linux for SIGKILL when the parent dies; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


@contextlib.contextmanager
def worker_pool(
    workers: int,
    context: Any = None,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers die with this process; on any exception (Ctrl-C included) they are
    killed at once rather than waited for. ``initializer(*initargs)`` runs in each worker after that is set
    up, as ProcessPoolExecutor's would."""
    setup = (os.getpid(), initializer, initargs)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=worker_init, initargs=setup)
    try:
        yield pool
    except BaseException:
        stop(pool)
        raise
    pool.shutdown(wait=True)


def stop(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers now and drop its queued work."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public way in Python 3.11
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.kill()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=1)
