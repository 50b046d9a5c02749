"""The local engine: every core of this machine reads its own chunks (files, or byte ranges of large
files); results are merged in chunk order, so the output never depends on which worker finished first."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from rollforge.engine.index import RowIndex
from rollforge.engine.job import Job
from rollforge.engine.worker import ChunkResult, job_inventory, merge_sample, process_chunk
from rollforge.io.lines import Chunk, plan_chunks
from rollforge.io.sources import STDIN, Discovery
from rollforge.parallel import default_workers, fork_is_safe
from rollforge.progress import bytes_bar
from rollforge.rollout import Reject
from rollforge.stats import Inventory
from rollforge.workers import raise_if_interrupted, worker_pool

MIN_CHUNK = 8 << 20
MAX_CHUNK = 256 << 20


@dataclass
class Scan:
    """Everything a run learned in its read pass: the inventory (with rejects), the index, spill files."""

    inventory: Inventory = field(default_factory=Inventory)
    index: RowIndex = field(default_factory=RowIndex)
    sft_paths: list[list[str]] = field(default_factory=list)  # per SFT format: spill file by chunk number
    dpo_paths: list[list[str]] = field(default_factory=list)  # per DPO format: spill file by chunk number
    skipped: list[Counter] = field(default_factory=list)  # per SFT format: rows a later format could not hold
    sample: list[tuple] = field(default_factory=list)
    filtered: Counter = field(default_factory=Counter)  # reason -> rollouts a per-rollout filter dropped
    lines_by_file: Counter = field(default_factory=Counter)  # non-blank lines read per input file


def chunk_size(total_bytes: int, workers: int) -> int:
    """Many chunks per worker (16), so the last one to finish leaves the other cores idle only briefly
    (benchmarks/DESIGN.md has the measurement)."""
    return max(MIN_CHUNK, min(MAX_CHUNK, total_bytes // max(1, workers * 16) + 1))


def scan(
    discovery: Discovery,
    job: Job,
    spill_dir: str | None,
    workers: int | None = None,
    started: Callable[[], object] | None = None,
) -> Scan:
    """Read every input line once, in parallel, into a :class:`Scan`. ``started`` is called once the
    workers exist (a thread started before them would stop them from being forked)."""
    workers = workers or default_workers()
    chunks = plan_chunks(discovery.sources, chunk_size(discovery.total_bytes, workers))
    # closing: an error while merging stops the workers now, not when the generator is collected
    with contextlib.closing(_run(chunks, job, spill_dir, workers, started or (lambda: None))) as results:
        scanned = merge(results, chunks, job)
    raise_if_interrupted()  # a Ctrl-C that an import beside the workers swallowed
    return scanned


def _context() -> Any:
    """fork when this process runs no other thread (workers start in milliseconds, with everything already
    imported); spawn otherwise, since forking a threaded process can deadlock the child."""
    return multiprocessing.get_context("fork" if fork_is_safe() else "spawn")


def _run(
    chunks: list[Chunk], job: Job, spill_dir: str | None, workers: int, started: Callable[[], object]
) -> Generator[ChunkResult, None, None]:
    total = sum((c.end or c.source.size) - c.start for c in chunks) or None
    rollouts = 0
    sizes = [(c.end or c.source.size) - c.start for c in chunks]
    if workers == 1 or len(chunks) == 1:
        started()
        with bytes_bar() as bar:
            task = bar.add_task("reading", total=total, rollouts=0)
            for n, chunk in enumerate(chunks):
                result = process_chunk(job, chunk, n, spill_dir)
                rollouts += result.inventory.rollouts
                bar.update(task, advance=sizes[n], rollouts=rollouts)
                yield result
        return
    # The pool (and with fork, its processes) starts before the progress bar's thread does. Workers die with
    # this process, and on Ctrl-C are killed at once (rollforge.workers). Stdin is read here: a worker's
    # stdin is closed.
    with worker_pool(min(workers, len(chunks)), _context()) as pool:
        futures = [
            None if chunk.source.path == STDIN else pool.submit(process_chunk, job, chunk, n, spill_dir)
            for n, chunk in enumerate(chunks)
        ]
        started()  # the workers exist now (with fork, all of them start at the first submit)
        with bytes_bar() as bar:
            task = bar.add_task("reading", total=total, rollouts=0)
            for n, (future, size) in enumerate(zip(futures, sizes, strict=True)):
                result = process_chunk(job, chunks[n], n, spill_dir) if future is None else future.result()
                rollouts += result.inventory.rollouts  # chunks are taken in order: the count grows in order
                bar.update(task, advance=size, rollouts=rollouts)
                yield result


def merge(results: Iterable[ChunkResult], chunks: list[Chunk], job: Job) -> Scan:
    """Fold chunk results, in chunk order, into one Scan; each is let go once folded (flat memory)."""
    out = Scan(inventory=job_inventory(job))
    samples: list[ChunkResult] = []
    first_line: dict[str, int] = {}
    for result, chunk in zip(results, chunks, strict=True):
        base = first_line.get(chunk.source.path, 0)
        first_line[chunk.source.path] = base + result.lines_seen
        if base:  # line numbers are per chunk; make them per file
            result.inventory.rejected = [
                Reject(r.file, r.line + base, r.reason, r.message) for r in result.inventory.rejected
            ]
        out.inventory.merge(result.inventory)
        out.lines_by_file[chunk.source.path] += result.inventory.lines
        out.index.extend(result.index)
        out.filtered.update(result.filtered)
        _append_paths(out.sft_paths, result.sft_paths)
        _append_paths(out.dpo_paths, result.dpo_paths)
        _append_counts(out.skipped, result.skipped)
        samples.append(ChunkResult(result.number, sample=result.sample))  # only the sample candidates stay
    out.sample = merge_sample(samples, job)
    return out


def _append_paths(by_format: list[list[str]], paths: list[str]) -> None:
    by_format.extend([] for _ in range(len(paths) - len(by_format)))
    for k, path in enumerate(paths):
        by_format[k].append(path)


def _append_counts(by_format: list[Counter], counts: list[Counter]) -> None:
    by_format.extend(Counter() for _ in range(len(counts) - len(by_format)))
    for k, count in enumerate(counts):
        by_format[k].update(count)
