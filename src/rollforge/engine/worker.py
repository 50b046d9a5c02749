"""One chunk of input, read in one process: decode, convert, per-rollout filters, render, index.

Each rollout a later step may write is rendered here, once, into the chunk's spill files (an SFT row, and
the DPO pieces of a possible pair), so the write step only copies bytes. Everything returned is small.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

import msgspec

from rollforge.engine.index import NO_SPILL, RowIndex, id_int
from rollforge.engine.job import Job, full_hash, to_record, trajectory_hash
from rollforge.export.dpo import pieces
from rollforge.export.sft import Skip, sft_row
from rollforge.filters import build_checks, first_failure
from rollforge.io.lines import Chunk, LineReader
from rollforge.io.read import read_chunk_raw
from rollforge.reasons import FILTER_REASONS
from rollforge.rollout import Head, Rollout
from rollforge.stats import Inventory

REASON_CODES = {name: i + 1 for i, name in enumerate(FILTER_REASONS)}
REASON_NAMES = {code: name for name, code in REASON_CODES.items()}
_encode = msgspec.json.Encoder().encode


@dataclass
class ChunkResult:
    number: int
    lines_seen: int = 0
    inventory: Inventory = field(default_factory=Inventory)
    index: RowIndex = field(default_factory=RowIndex)
    sft_path: str = ""
    dpo_path: str = ""
    dropped_early: Counter = field(default_factory=Counter)  # reason -> rollouts dropped before conversion
    # Review-sample candidates per stratum: the rows with the smallest seeded keys, with their raw lines.
    sample: list[list[tuple[int, int, bytes]]] = field(default_factory=list)


class _Spill:
    """An append-only file of rendered rows; ``add`` returns (offset, length)."""

    def __init__(self, path: str, enabled: bool) -> None:
        self.path = path if enabled else ""
        self.file: BinaryIO | None = open(path, "wb", buffering=1 << 20) if enabled else None  # noqa: SIM115
        self.offset = 0

    def add(self, data: bytes) -> tuple[int, int]:
        assert self.file is not None
        start = self.offset
        self.file.write(data)
        self.file.write(b"\n")
        self.offset += len(data) + 1
        return start, len(data)

    def close(self) -> None:
        if self.file:
            self.file.close()


def process_chunk(job: Job, chunk: Chunk, number: int, spill_dir: str) -> ChunkResult:
    result = ChunkResult(number, sample=[[] for _ in job.strata])
    checks = build_checks(job.filters)
    head_checks = build_checks(job.filters, full=False) if job.head_first else None
    decoder = job.decoder()
    reader = LineReader(chunk)
    sft = _Spill(os.path.join(spill_dir, f"sft-{number:06d}.jsonl"), job.sft is not None)
    dpo = _Spill(os.path.join(spill_dir, f"dpo-{number:06d}.jsonl"), job.dpo is not None)
    try:
        for record, line in read_chunk_raw(chunk, decoder, reader, head_checks):
            result.inventory.add(record)
            if isinstance(record, Head):  # dropped on its head: counted, never indexed or converted
                result.dropped_early[first_failure(head_checks or [], record)] += 1
            elif isinstance(record, Rollout):
                _rollout(result, job, checks, record, sft, dpo)
                if job.strata:
                    _sample(result.sample, job, record, line)
    finally:
        sft.close()
        dpo.close()
    result.lines_seen, result.sft_path, result.dpo_path = reader.lines_seen, sft.path, dpo.path
    return result


def _rollout(result: ChunkResult, job: Job, checks: list, r: Rollout, sft: _Spill, dpo: _Spill) -> None:
    reason = first_failure(checks, r)
    record = to_record(r)
    sft_at = (NO_SPILL, 0)
    if job.sft and reason is None:
        notes: Counter = Counter()
        try:
            sft_at = sft.add(_encode(sft_row(record, job.sft.format, job.sft.reasoning, notes)))
        except Skip as skip:
            reason = skip.reason
        if notes:
            result.index.notes[len(result.index)] = dict(notes)
    dpo_at = (NO_SPILL, 0)
    if job.dpo and r.assistant_turns:
        dpo_at = dpo.add(_encode(pieces(record, job.dpo.format, job.dpo.reasoning)))
    _index(result.index, job, r, reason, sft_at, dpo_at, result.number)


def _index(
    index: RowIndex,
    job: Job,
    r: Rollout,
    reason: str | None,
    sft: tuple[int, int],
    dpo: tuple[int, int],
    chunk: int,
) -> None:
    index.prompt.append(id_int(r.prompt_id))
    index.rollout.append(id_int(r.rollout_id))
    index.reward.append(r.reward)
    index.reason.append(REASON_CODES[reason] if reason else 0)
    index.success.append(job.filters.success(r))
    index.trajectory.append(trajectory_hash(r) if job.dpo else 0)
    index.full.append(full_hash(r) if job.filters.dedup == "exact" else 0)
    index.key.append(job.key(r.rollout_id))
    index.sft_offset.append(sft[0])
    index.sft_length.append(sft[1])
    index.dpo_offset.append(dpo[0])
    index.dpo_length.append(dpo[1])
    index.chunk.append(chunk)
    if job.balance_by:
        value = r.field(job.balance_by)
        index.category.append(value if isinstance(value, str) else msgspec.json.encode(value).decode())
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


def merge_sample(results: list[ChunkResult], job: Job) -> list[tuple[str, int, bytes]]:
    """The global sample: per stratum the smallest keys over every chunk's candidates."""
    picked = []
    for s, stratum in enumerate(job.strata):
        pool = [item for result in results for item in result.sample[s]]
        pool.sort(key=lambda item: -item[0])
        picked += [(stratum.name, item[1], item[2]) for item in pool[: stratum.count]]
    return picked
