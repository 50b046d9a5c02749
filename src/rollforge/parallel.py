"""A few independent tasks on several cores (a report's SFT and DPO reading, its figures; a release's writers).

Forked processes when that is safe: they start in milliseconds with everything already imported, and the
GIL no longer serialises the Python work. Forking a process that runs another thread (a progress spinner
on a terminal) can deadlock the child, so then the tasks run on threads instead.
Results come back in the order of the calls. A large input every call reads (a run's index) is passed as
``common`` rather than in the arguments: forked processes inherit it instead of each receiving a pickled
copy.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from rollforge.workers import worker_pool

Call = tuple[Callable[..., Any], tuple[Any, ...]]  # a module-level function (picklable) and its arguments
_NOTHING = object()
_inherited: Any = _NOTHING  # in a forked worker only: the `common` value of the run_calls that forked it


def default_workers() -> int:
    """Every core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def fork_is_safe() -> bool:
    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


def run_calls(calls: Sequence[Call], workers: int | None, common: Any = _NOTHING) -> list[Any]:
    """``[f(*args) for f, args in calls]`` on up to ``workers`` cores (None: all of them); with ``common``,
    ``[f(common, *args) ...]``. This process runs every ``workers``-th call itself while the others run in
    ``workers - 1`` forked processes (threads when forking is unsafe): the process that would only wait does
    a share, and one process fewer holds memory (a report's figure drawers are large: benchmarks/DESIGN.md).

    ``common`` reaches a forked worker as the argument of the pool's initializer, which fork hands over
    without pickling: the worker reads the parent's pages, shared copy-on-write."""
    direct = [(f, args if common is _NOTHING else (common, *args)) for f, args in calls]
    workers = min(workers or default_workers(), len(calls))
    if workers <= 1:
        return [function(*args) for function, args in direct]
    pools: contextlib.AbstractContextManager[Executor]
    remote = direct
    if fork_is_safe():  # workers that die with this process, killed at once on Ctrl-C (rollforge.workers)
        fork = multiprocessing.get_context("fork")
        pools = worker_pool(workers - 1, fork, initializer=_inherit, initargs=(common,))
        if common is not _NOTHING:
            remote = [(_with_inherited, (f, args)) for f, args in calls]
    else:
        pools = ThreadPoolExecutor(workers - 1)
    with pools as pool:
        futures = {n: pool.submit(f, *args) for n, (f, args) in enumerate(remote) if n % workers}
        mine = {n: f(*args) for n, (f, args) in enumerate(direct) if not n % workers}
        return [mine[n] if n in mine else futures[n].result() for n in range(len(calls))]


def _inherit(common: Any) -> None:
    global _inherited
    _inherited = common


def _with_inherited(function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return function(_inherited, *args)
