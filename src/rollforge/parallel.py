"""A few independent tasks on several cores (a report's SFT and DPO reading, its figures; a release's writers).

Forked processes when that is safe: they start in milliseconds with everything already imported, and the
GIL no longer serialises the Python work. Forking a process that runs another thread (a progress spinner
on a terminal) can deadlock the child, so then the tasks run on threads instead.
Results come back in the order of the calls. Large inputs every call reads (a run's index) go through
:func:`shared` rather than the arguments: forked processes inherit them instead of each receiving a pickled
copy.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from rollforge.workers import worker_pool

Call = tuple[Callable[..., Any], tuple[Any, ...]]  # a module-level function (picklable) and its arguments
_SHARED: dict[str, Any] = {}


@contextlib.contextmanager
def shared(**values: Any) -> Iterator[None]:
    """Make ``values`` readable with :func:`inherited` by the calls that ``run_calls`` runs inside this block.
    Forked workers start after it is entered, so they inherit the values (pages shared copy-on-write, no
    pickling); threads and this process read them directly."""
    _SHARED.update(values)
    try:
        yield
    finally:
        for name in values:
            del _SHARED[name]


def inherited(name: str) -> Any:
    return _SHARED[name]


def default_workers() -> int:
    """Every core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def fork_is_safe() -> bool:
    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


def run_calls(calls: Sequence[Call], workers: int | None) -> list[Any]:
    """``[f(*args) for f, args in calls]`` on up to ``workers`` cores (None: all of them). This process
    runs every ``workers``-th call itself while the others run in ``workers - 1`` forked processes (threads
    when forking is unsafe): the process that would only wait does a share, and one process fewer holds
    memory (a report's figure drawers are about 60 MB each)."""
    workers = min(workers or default_workers(), len(calls))
    if workers <= 1:
        return [function(*args) for function, args in calls]
    pools: contextlib.AbstractContextManager[Executor]
    if fork_is_safe():  # workers that die with this process, killed at once on Ctrl-C (rollforge.workers)
        pools = worker_pool(workers - 1, multiprocessing.get_context("fork"))
    else:
        pools = ThreadPoolExecutor(workers - 1)
    with pools as pool:
        futures = {n: pool.submit(f, *args) for n, (f, args) in enumerate(calls) if n % workers}
        mine = {n: f(*args) for n, (f, args) in enumerate(calls) if not n % workers}
        return [mine[n] if n in mine else futures[n].result() for n in range(len(calls))]
