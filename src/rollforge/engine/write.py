"""Writing the selected rows. Rows were rendered where they were read (see worker.py); here they are
copied from the spill files into atomically written JSONL files, per split, in input order."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import msgspec

from rollforge.engine.index import NO_SPILL, id_hex
from rollforge.engine.local import Scan
from rollforge.engine.select import DpoSelection, SftSelection
from rollforge.export.dpo import PairInfo, Pieces, split_at_divergence
from rollforge.export.formats import Format
from rollforge.export.kto import BETWEEN_LABELS, Labels
from rollforge.export.sft import Skip
from rollforge.io.target import open_output

SplitOf = Callable[[str], str]  # prompt_id -> split name (e.g. "train" / "validation")


@dataclass
class Written:
    """What a write produced: rows and sha256 per split, pairs the format skipped, export notes."""

    rows: Counter
    sha256: dict[str, str]
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


_pieces = msgspec.json.Decoder(Pieces)
_encode = msgspec.json.Encoder().encode


class _NothingWritten(Exception):
    """Thrown into the atomic files of a write with no row, so that they replace nothing."""


class SplitWriters(contextlib.ExitStack):
    """One atomic JSONL file per split; counts rows and hashes the bytes written per split. Without
    ``keep_empty``, a write with no row at all leaves every target as it was (an earlier dataset there is
    not replaced by an empty file: the caller refuses the run with its reasons)."""

    def __init__(self, paths: dict[str, str], keep_empty: bool = True) -> None:
        super().__init__()
        self.paths = paths
        self.keep_empty = keep_empty
        self.files: dict[str, BinaryIO] = {}
        self.rows: Counter = Counter({split: 0 for split in paths})
        self.sha256 = {split: hashlib.sha256() for split in paths}

    def __enter__(self) -> SplitWriters:
        super().__enter__()
        for split, path in self.paths.items():
            self.files[split] = self.enter_context(open_output(path))  # atomic, or stdout, a pipe, ...
        return self

    def __exit__(self, *exc: Any) -> bool:
        if exc[0] is None and not self.keep_empty and not sum(self.rows.values()):
            super().__exit__(_NothingWritten, _NothingWritten(), None)  # each atomic file drops its temp
            return False
        return bool(super().__exit__(*exc))

    def written(self, notes: Counter, skipped: Counter | None = None) -> Written:
        digests = {split: h.hexdigest() for split, h in self.sha256.items()}
        return Written(self.rows, digests, skipped or Counter(), notes)

    def write(self, split: str, row: bytes) -> None:
        fh = self.files[split]
        fh.write(row)
        fh.write(b"\n")
        self.rows[split] += 1
        digest = self.sha256[split]
        digest.update(row)
        digest.update(b"\n")


class SpillReader:
    """Random access to rendered rows in the spill files (one open descriptor per chunk)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.fds: dict[int, int] = {}

    def read(self, chunk: int, offset: int, length: int) -> bytes:
        if chunk not in self.fds:
            self.fds[chunk] = os.open(self.paths[chunk], os.O_RDONLY)
        return os.pread(self.fds[chunk], length, offset)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


@contextlib.contextmanager
def spill_reader(paths: list[str]) -> Iterator[SpillReader]:
    reader = SpillReader(paths)
    try:
        yield reader
    finally:
        reader.close()


def write_sft(
    scan: Scan,
    selection: SftSelection,
    paths: dict[str, str],
    split_of: SplitOf,
    k: int = 0,
    keep_empty: bool = True,
) -> Written:
    """Write SFT format ``k`` (rows the selection keeps) into one file per split."""
    index, placement, notes = scan.index, scan.index.sft[k], Counter[str]()
    with SplitWriters(paths, keep_empty) as out, spill_reader(scan.sft_paths[k]) as spill:
        for row in range(len(index)):
            if not selection.keep[row] or placement.offset[row] == NO_SPILL:
                continue
            data = spill.read(index.chunk[row], placement.offset[row], placement.length[row])
            out.write(split_of(id_hex(index.prompt[row])), data)
            notes.update(placement.notes.get(row, {}))
    return out.written(notes)


def write_kto(
    scan: Scan,
    selection: SftSelection,
    paths: dict[str, str],
    split_of: SplitOf,
    labels: Labels,
    k: int = 0,
    keep_empty: bool = True,
) -> tuple[Written, Counter]:
    """Write KTO output ``k`` (rendered as SFT output ``k``): each kept rollout's row with its label, into one
    file per split. Returns what was written, and per label (``desirable``/``undesirable``) and per split the
    rows (a kept rollout without a label is counted as ``between_labels`` in ``skipped``)."""
    index, placement, notes, skipped = scan.index, scan.index.sft[k], Counter[str](), Counter[str]()
    per_label: Counter = Counter()
    with SplitWriters(paths, keep_empty) as out, spill_reader(scan.sft_paths[k]) as spill:
        for row in range(len(index)):
            if not selection.keep[row] or placement.offset[row] == NO_SPILL:
                continue
            label = labels(bool(index.success[row]), index.reward[row])
            if label is None:
                skipped[BETWEEN_LABELS] += 1
                continue
            data = spill.read(index.chunk[row], placement.offset[row], placement.length[row])
            split = split_of(id_hex(index.prompt[row]))
            out.write(split, data[:-1] + (b',"label":true}' if label else b',"label":false}'))
            per_label[("desirable" if label else "undesirable", split)] += 1
            notes.update(placement.notes.get(row, {}))
    return out.written(notes, skipped), per_label


def write_dpo(
    scan: Scan,
    selection: DpoSelection,
    paths: dict[str, str],
    split_of: SplitOf,
    fmt: Format,
    split: bool = False,
    k: int = 0,
    keep_empty: bool = True,
) -> Written:
    """Write DPO output ``k`` (in format ``fmt``): one row per pair the format can hold, into one file per
    split."""
    index, placement = scan.index, scan.index.dpo[k]
    skipped, notes = Counter[str](), Counter[str]()
    with SplitWriters(paths, keep_empty) as out, spill_reader(scan.dpo_paths[k]) as spill:
        for chosen, rejected in selection.pairs:
            good, bad = (
                _pieces.decode(spill.read(index.chunk[row], placement.offset[row], placement.length[row]))
                for row in (chosen, rejected)
            )
            # Grouped by prompt_id; equal prompt bytes guarantee no hash collision paired two prompts.
            if good.prompt != bad.prompt:
                skipped["prompt_mismatch"] += 1
                continue
            if split:
                good, bad = split_at_divergence(good, bad, notes)
            prompt_id = id_hex(index.prompt[chosen])
            info = PairInfo(
                index.reward[chosen],
                index.reward[rejected],
                prompt_id,
                id_hex(index.rollout[chosen]),
                id_hex(index.rollout[rejected]),
                index.env_names.get(index.env[chosen], "") if len(index.env) else "",
            )
            try:
                out.write(split_of(prompt_id), _encode(fmt.pair_row(good, bad, info, notes)))
            except Skip as skip:
                skipped[skip.reason] += 1
    return out.written(notes, skipped)
