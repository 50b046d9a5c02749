"""One chunk of input, read in one process: decode, convert, per-rollout filters, render, index.

Each rollout a later step may write is rendered here, once, into the chunk's spill files (an SFT row, and
the DPO pieces of a possible pair), so the write step only copies bytes. Everything returned is small.
"""

from __future__ import annotations

import heapq
import io
import os
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import msgspec

from rollforge.engine.index import NO_SPILL, Placement, RowIndex, id_int
from rollforge.engine.job import Job, to_record
from rollforge.environments import env_code, environment_of
from rollforge.export.dpo import pieces
from rollforge.export.sft import Skip
from rollforge.filtering import KEPT, Filtering
from rollforge.identity import trajectory_hash
from rollforge.io.lines import Chunk, LineReader
from rollforge.io.read import read_chunk_raw
from rollforge.reasons import REASON_CODES
from rollforge.rollout import Head, Rollout
from rollforge.stats import Inventory
from rollforge.success import Success

_encode = msgspec.json.Encoder().encode


@dataclass
class ChunkResult:
    number: int
    lines_seen: int = 0
    inventory: Inventory = field(default_factory=Inventory)
    index: RowIndex = field(default_factory=RowIndex)
    sft_paths: list[str] = field(default_factory=list)  # one spill file per SFT format
    dpo_paths: list[str] = field(default_factory=list)
    skipped: list[Counter] = field(
        default_factory=list
    )  # per secondary SFT format: reason -> rows it cannot hold
    filtered: Counter = field(default_factory=Counter)  # reason -> rollouts a per-rollout filter dropped
    # Without a spill_dir: spill file name -> contents (a remote worker ships them to the driver).
    in_memory: dict[str, bytes] = field(default_factory=dict)
    # Review-sample candidates per (environment, stratum) ("" for every environment unless the job samples
    # each one): the rows with the smallest seeded keys, with their raw lines.
    sample: dict[tuple[str, int], list[tuple[int, int, bytes]]] = field(default_factory=dict)


class _Spill:
    """An append-only file of rendered rows; ``add`` returns (offset, length). Without a path it is kept in
    memory (a remote worker ships it back to the driver, which writes it out at the same offsets)."""

    def __init__(self, folder: str | None, name: str) -> None:
        self.name = name
        self.path = os.path.join(folder, name) if folder else ""
        self.file: BinaryIO = open(self.path, "wb", buffering=1 << 20) if folder else io.BytesIO()  # noqa: SIM115
        self.rendered: dict[int, tuple[int, int]] = {}  # row -> where its pieces went (shared styles)
        self.offset = 0

    def add(self, data: bytes) -> tuple[int, int]:
        assert self.file is not None
        start = self.offset
        self.file.write(data)
        self.file.write(b"\n")
        self.offset += len(data) + 1
        return start, len(data)

    def close(self) -> bytes:
        data = self.file.getvalue() if isinstance(self.file, io.BytesIO) else b""
        self.file.close()
        return data


def process_chunk(job: Job, chunk: Chunk, number: int, spill_dir: str | None) -> ChunkResult:
    result = ChunkResult(
        number,
        skipped=[Counter() for _ in job.sft],
        inventory=job_inventory(job),
    )
    result.index.sft = [Placement() for _ in job.sft]
    result.index.dpo = [Placement() for _ in job.dpo]
    judge = _Judge(
        job.filters.filtering(), job.filters.success_where_known, sft=bool(job.sft)
    )  # a `max` is resolved before
    decoder = job.decoder()
    reader = LineReader(chunk)
    sft = [_Spill(spill_dir, f"sft{k}-{number:06d}.jsonl") for k in range(len(job.sft))]
    # DPO formats that style alike (trl, nemo-rl) render the same pieces: one spill file serves them all.
    styles = [o.styling for o in job.dpo]
    by_style = {
        s: _Spill(spill_dir, f"dpo{i}-{number:06d}.jsonl") for i, s in enumerate(dict.fromkeys(styles))
    }
    dpo = [by_style[s] for s in styles]
    try:
        first_look = judge.filtering.judge if job.head_first else None
        for record, line in read_chunk_raw(chunk, decoder, reader, first_look):
            result.inventory.add(record)
            if isinstance(record, Head):  # dropped on its first look: counted, never converted nor indexed
                judge.filtering.count(record.dropped)
            elif isinstance(record, Rollout):
                if job.sft or job.dpo:  # inspect and sample write no rows: no index to keep
                    _rollout(result, job, judge, record, sft, dpo)
                if job.strata:
                    _sample(result.sample, job, record, line)
    finally:
        for spill in (*sft, *by_style.values()):
            data = spill.close()
            if not spill_dir:
                result.in_memory[spill.name] = data
    result.lines_seen = reader.lines_seen
    result.filtered = judge.filtering.counts
    result.sft_paths, result.dpo_paths = [s.path or s.name for s in sft], [s.path or s.name for s in dpo]
    return result


def job_inventory(job: Job) -> Inventory:
    """An empty inventory that counts each environment's successes under the job's policy."""
    return Inventory(
        values=job.statistics, success=job.filters.success_where_known, policy=job.filters.policy
    )


@dataclass
class _Judge:
    """A chunk's filters and success definition, prepared once."""

    filtering: Filtering
    success: Success
    sft: bool = True  # a run writing SFT rows: the filters that shape the SFT set (dedup, caps) need columns

    def __post_init__(self) -> None:
        # What filters over every rollout need of each one; a DPO-only run reads only those judged per prompt.
        self.columns = [(f, v) for f, v in self.filtering.columns() if self.sft or f.needs is not KEPT]


def _rollout(
    result: ChunkResult, job: Job, judge: _Judge, r: Rollout, sft: list[_Spill], dpo: list[_Spill]
) -> None:
    """Filter, render into every requested format, index. The first SFT format decides the filter verdict:
    a row it cannot represent is filtered; a later format that cannot hold it just skips it (counted)."""
    reason = judge.filtering.apply(r)
    env = environment_of(r, job.filters.env_field)
    record = to_record(r, env)
    row = len(result.index)
    for k, (output, spill) in enumerate(zip(job.sft, sft, strict=True)):
        placement = result.index.sft[k]
        if reason is not None:
            placement.add((NO_SPILL, 0))
            continue
        notes: Counter = Counter()
        try:
            placement.add(spill.add(_encode(output.format.sft_row(record, output.styling, notes))))
        except Skip as skip:
            placement.add((NO_SPILL, 0))
            if k == 0:
                reason = skip.reason
                judge.filtering.count(reason)
            else:
                result.skipped[k][skip.reason] += 1
        if notes:
            placement.notes[row] = dict(notes)
    for output, spill, placement in zip(job.dpo, dpo, result.index.dpo, strict=True):
        if not r.assistant_turns:
            placement.add((NO_SPILL, 0))
            continue
        if row not in spill.rendered:  # the first format of this style writes; the others point at it
            spill.rendered = {row: spill.add(_encode(pieces(record, output.styling)))}
        placement.add(spill.rendered[row])
    _index(result.index, job, judge, r, reason, result.number, env)


def _index(
    index: RowIndex, job: Job, judge: _Judge, r: Rollout, reason: str | None, chunk: int, env: str
) -> None:
    index.prompt.append(id_int(r.prompt_id))
    index.rollout.append(id_int(r.rollout_id))
    index.reward.append(r.reward)
    index.reason.append(REASON_CODES[reason] if reason else 0)
    index.success.append(judge.success(r))
    if job.dpo:  # columns only the steps that read them fill (8 bytes a rollout each)
        index.trajectory.append(trajectory_hash(r.completion))
    index.key.append(job.key(r.rollout_id))
    index.chunk.append(chunk)
    code = env_code(env)
    index.env.append(code)
    index.env_names.setdefault(code, env)
    for f, value in judge.columns:  # only a rollout every per-rollout filter kept can be dropped later
        column = index.columns.get(f.reason)
        if column is None:
            column = index.columns[f.reason] = array(f.typecode) if f.typecode else []
        column.append(f.column(r, value) if reason is None else (0 if f.typecode else None))


def _sample(heaps: dict[tuple[str, int], list[Any]], job: Job, r: Rollout, line: bytes) -> None:
    """Keep, per stratum (per environment and stratum with ``job.sample_by_env``), the `count` rollouts with
    the smallest keys (a seeded sample, order-free)."""
    env = environment_of(r, job.filters.env_field) if job.sample_by_env else ""
    for s, stratum in enumerate(job.strata):
        if stratum.holds(r.reward):
            heap = heaps.setdefault((env, s), [])
            item = (-job.key(r.rollout_id), r.line, line)
            if len(heap) == stratum.count and item[0] <= heap[0][0]:
                return
            if any(held[0] == item[0] for held in heap):  # a repeat of a line already drawn: one rollout
                return
            if len(heap) < stratum.count:
                heapq.heappush(heap, item)
            else:
                heapq.heapreplace(heap, item)
            return


def merge_sample(results: list[ChunkResult], job: Job) -> list[tuple[str, int, bytes]]:
    """The global sample: per stratum the smallest keys over every chunk's candidates."""
    picked = []
    keys = sorted({key for result in results for key in result.sample}, key=lambda k: (k[1], k[0]))
    for env, s in keys:
        stratum = job.strata[s]
        # A rollout repeated in several chunks is a candidate in each: drawn once (its first copy).
        pool = list(
            {
                item[0]: item for result in reversed(results) for item in result.sample.get((env, s), ())
            }.values()
        )
        pool.sort(key=lambda item: -item[0])
        name = f"{env} {stratum.name}" if env else stratum.name
        picked += [(name, item[1], item[2]) for item in pool[: stratum.count]]
    return picked
