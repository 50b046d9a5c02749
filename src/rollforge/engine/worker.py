"""One chunk of input, read in one process: decode, convert, per-rollout filters, index, spill.

The spill file holds the converted record (messages, tools, ids) of each rollout a later step may write,
so writing never re-reads or re-converts the input. Everything returned is small and picklable.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from rollforge.engine.index import NO_SPILL, RowIndex, id_int
from rollforge.engine.job import Job, full_hash, to_record, trajectory_hash
from rollforge.filters import build_checks, first_failure
from rollforge.io.lines import Chunk, LineReader
from rollforge.io.read import read_chunk_raw
from rollforge.reasons import FILTER_REASONS
from rollforge.rollout import Rollout
from rollforge.stats import Inventory

REASON_CODES = {name: i + 1 for i, name in enumerate(FILTER_REASONS)}
REASON_NAMES = {code: name for name, code in REASON_CODES.items()}


@dataclass
class ChunkResult:
    number: int
    lines_seen: int = 0
    inventory: Inventory = field(default_factory=Inventory)
    index: RowIndex = field(default_factory=RowIndex)
    spill_path: str | None = None
    # Review-sample candidates per stratum: the rows with the smallest seeded keys, with their raw lines.
    sample: list[list[tuple[int, int, bytes]]] = field(default_factory=list)


def process_chunk(job: Job, chunk: Chunk, number: int, spill_dir: str) -> ChunkResult:
    result = ChunkResult(number, sample=[[] for _ in job.strata])
    checks = build_checks(job.filters)
    decoder = job.decoder()
    reader = LineReader(chunk)
    result.spill_path = os.path.join(spill_dir, f"chunk-{number:06d}.jsonl")
    offset = 0
    with open(result.spill_path, "wb", buffering=1 << 20) as spill:
        for record, line in read_chunk_raw(chunk, decoder, reader):
            result.inventory.add(record)
            if not isinstance(record, Rollout):
                continue
            reason = first_failure(checks, record)
            spilled = NO_SPILL
            if job.spill and (reason is None or job.keep_all_records):
                data = orjson.dumps(to_record(record)) + b"\n"
                spill.write(data)
                spilled, offset = offset, offset + len(data)
            _index(result.index, job, record, reason, spilled, offset - spilled, number)
            if job.strata:
                _sample(result.sample, job, record, line)
    result.lines_seen = reader.lines_seen
    return result


def _index(index: RowIndex, job: Job, r: Rollout, reason: str | None, spilled: int, length: int, chunk: int) -> None:
    key = job.key(r.rollout_id)
    index.prompt.append(id_int(r.prompt_id))
    index.rollout.append(id_int(r.rollout_id))
    index.reward.append(r.reward)
    index.reason.append(REASON_CODES[reason] if reason else 0)
    index.success.append(job.filters.success(r))
    index.trajectory.append(trajectory_hash(r))
    index.full.append(full_hash(r) if job.filters.dedup == "exact" else 0)
    index.key.append(key)
    index.spill_offset.append(spilled)
    index.spill_length.append(length if spilled != NO_SPILL else 0)
    index.chunk.append(chunk)
    if job.balance_by:
        value = r.field(job.balance_by)
        index.category.append(value if isinstance(value, str) else orjson.dumps(value).decode())
    if job.filters.dedup == "near":
        from rollforge.dedup import minhash

        index.minhash.append(minhash(r) if reason is None else None)


def _sample(heaps: list[list[tuple[int, int, bytes]]], job: Job, r: Rollout, line: bytes) -> None:
    """Keep, per stratum, the `count` rollouts with the smallest keys (a seeded sample, order-free)."""
    for heap, stratum in zip(heaps, job.strata, strict=True):
        if stratum.holds(r.reward):
            item = (-job.key(r.rollout_id), r.line, line)
            if len(heap) < stratum.count:
                heapq.heappush(heap, item)
            elif item[0] > heap[0][0]:
                heapq.heapreplace(heap, item)
            return


def merge_sample(results: list[ChunkResult], job: Job) -> list[tuple[Any, ...]]:
    """The global sample: per stratum the smallest keys over every chunk's candidates."""
    picked = []
    for s, stratum in enumerate(job.strata):
        pool = [item for result in results for item in result.sample[s]]
        pool.sort(key=lambda item: -item[0])
        picked += [(stratum.name, *item[1:]) for item in pool[: stratum.count]]
    return picked
