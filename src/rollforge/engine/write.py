"""Writing the selected rows: converted records come back from the spill files (never from the input),
are formatted for the target trainer, and land in atomically written JSONL files."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable
from typing import Any, BinaryIO

import orjson

from rollforge.engine.index import NO_SPILL, RowIndex, id_hex
from rollforge.engine.local import Scan
from rollforge.engine.select import DpoSelection, SftSelection
from rollforge.export.dpo import dpo_row
from rollforge.export.sft import Skip, sft_row
from rollforge.io.atomic import atomic_file

SplitOf = Callable[[str], str]  # prompt_id -> split name (e.g. "train" / "validation")


class SplitWriters(contextlib.ExitStack):
    """One atomic JSONL file per split; counts rows written per split."""

    def __init__(self, paths: dict[str, str]) -> None:
        super().__init__()
        self.paths = paths
        self.files: dict[str, BinaryIO] = {}
        self.rows: Counter = Counter()

    def __enter__(self) -> SplitWriters:
        super().__enter__()
        for split, path in self.paths.items():
            self.files[split] = self.enter_context(atomic_file(path))
        return self

    def write(self, split: str, row: dict[str, Any]) -> None:
        self.files[split].write(orjson.dumps(row) + b"\n")
        self.rows[split] += 1


def iter_kept_records(scan: Scan, keep: list[bool]) -> Any:
    """(row, record) for every kept row, reading each chunk's spill file front to back."""
    index: RowIndex = scan.index
    current, spill = -1, None
    try:
        for row in range(len(index)):
            if index.spill_offset[row] == NO_SPILL:
                continue
            chunk = index.chunk[row]
            if chunk != current:
                if spill:
                    spill.close()
                spill = open(scan.spill_paths[chunk], "rb", buffering=1 << 20)  # noqa: SIM115
                current = chunk
            assert spill is not None
            data = spill.readline()
            if keep[row]:
                yield row, orjson.loads(data)
    finally:
        if spill:
            spill.close()


def write_sft(
    scan: Scan, selection: SftSelection, paths: dict[str, str], split_of: SplitOf, fmt: str, reasoning: str
) -> tuple[Counter, Counter, Counter]:
    """Rows written per split, rows skipped by the format (reason -> n), and export facts."""
    skipped: Counter = Counter()
    facts: Counter = Counter()
    with SplitWriters(paths) as out:
        for _, record in iter_kept_records(scan, selection.keep):
            try:
                row = sft_row(record, fmt, reasoning, facts)
            except Skip as skip:
                skipped[skip.reason] += 1
                continue
            out.write(split_of(record["prompt_id"]), row)
    return out.rows, skipped, facts


class _SpillReader:
    """Random access to spilled records (DPO needs two records per pair, from anywhere)."""

    def __init__(self, scan: Scan) -> None:
        self.scan = scan
        self.fds: dict[int, int] = {}

    def record(self, row: int) -> dict[str, Any]:
        index = self.scan.index
        chunk = index.chunk[row]
        if chunk not in self.fds:
            self.fds[chunk] = os.open(self.scan.spill_paths[chunk], os.O_RDONLY)
        data = os.pread(self.fds[chunk], index.spill_length[row], index.spill_offset[row])
        return orjson.loads(data)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


def write_dpo(
    scan: Scan,
    selection: DpoSelection,
    paths: dict[str, str],
    split_of: SplitOf,
    fmt: str,
    reasoning: str,
    split_at_divergence: bool = False,
) -> tuple[Counter, Counter, Counter]:
    skipped: Counter = Counter()
    facts: Counter = Counter()
    reader = _SpillReader(scan)
    try:
        with SplitWriters(paths) as out:
            for chosen, rejected in selection.pairs:
                good, bad = reader.record(chosen.row), reader.record(rejected.row)
                # Same prompt_id is how they were grouped; equal prompts is the guarantee (no hash collision).
                if good["messages"][: good["prompt_len"]] != bad["messages"][: bad["prompt_len"]]:
                    skipped["prompt_mismatch"] += 1
                    continue
                try:
                    row = dpo_row(good, bad, fmt, reasoning, split_at_divergence, facts)
                except Skip as skip:
                    skipped[skip.reason] += 1
                    continue
                out.write(split_of(id_hex(scan.index.prompt[chosen.row])), row)
    finally:
        reader.close()
    return out.rows, skipped, facts
