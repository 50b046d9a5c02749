"""The in-memory index of the rollouts under review: where each line is, and what the list page filters on.

The files are streamed once at start. Only a few small values per rollout stay in memory; a rollout is
rendered by re-reading its one line (a seek for plain files), so a 1 MB rollout costs memory only while
its page is built. Rejected lines are counted, never kept.
"""

from __future__ import annotations

import bisect
import itertools
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from rollforge.decode import LineDecoder
from rollforge.errors import RollforgeError
from rollforge.io.lines import Chunk, LineReader, open_stream
from rollforge.io.read import load_materialized, read_chunk_raw
from rollforge.io.sources import STDIN, Source, discover
from rollforge.rollout import Reject, Rollout

DEFAULT_STRATA = (0.5, 0.8)


@dataclass(frozen=True, slots=True)
class Entry:
    """One indexed rollout: enough to list and filter it, and to find its line again."""

    rollout_id: str
    source: int  # position in RolloutIndex.sources
    offset: int  # byte offset of the line in the (decompressed) file
    line: int  # 1-based line number, for people
    reward: float
    task_type: str
    prompt_id: str


class _OffsetReader(LineReader):
    """A LineReader that remembers the byte offset of the line it yielded last."""

    last_offset = 0

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        for index, offset, line in super().__iter__():
            self.last_offset = offset
            yield index, offset, line


@dataclass(slots=True)
class Filter:
    """What the list page shows: a reward stratum (index into the strata), a task type, a label status."""

    stratum: int | None = None
    task_type: str | None = None
    status: str | None = None  # unlabelled | accept | reject | flag


@dataclass(slots=True)
class RolloutIndex:
    sources: list[Source]
    entries: list[Entry]
    strata: tuple[float, ...] = DEFAULT_STRATA
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> lines
    duplicates: int = 0  # identical lines: one rollout, listed once
    by_id: dict[str, int] = field(default_factory=dict)  # rollout_id -> position in entries
    stratum_counts: list[int] = field(default_factory=list)  # rollouts per stratum, for the filter menu
    task_counts: Counter[str] = field(default_factory=Counter)  # rollouts per task type

    @classmethod
    def load(cls, paths: list[str], strata: tuple[float, ...] = DEFAULT_STRATA) -> RolloutIndex:
        discovery = discover(paths)
        if any(s.path == STDIN for s in discovery.sources):
            raise RollforgeError(
                "review cannot read stdin", hint="pass files: pages re-read rollouts from them"
            )
        # lazy_text: the index needs no message text; arguments="string": show bad tool arguments, raw.
        decoder = LineDecoder(lazy_text=True, arguments="string")
        index = cls(list(discovery.sources), [], tuple(sorted(strata)))
        for number, source in enumerate(index.sources):
            chunk = Chunk(source)
            reader = _OffsetReader(chunk)
            for record, _ in read_chunk_raw(chunk, decoder, reader):
                if isinstance(record, Reject):
                    index.rejected[record.reason] += 1
                elif isinstance(record, Rollout):
                    index._add(record, number, reader.last_offset)
        index.stratum_counts = [0] * (len(index.strata) + 1)
        for e in index.entries:
            index.stratum_counts[index.stratum_of(e.reward)] += 1
            index.task_counts[e.task_type] += 1
        return index

    def _add(self, r: Rollout, source: int, offset: int) -> None:
        if r.rollout_id in self.by_id:
            self.duplicates += 1
            return
        self.by_id[r.rollout_id] = len(self.entries)
        # Interned: a few task types repeat over every entry.
        task_type = sys.intern(r.task_type)
        self.entries.append(Entry(r.rollout_id, source, offset, r.line, r.reward, task_type, r.prompt_id))

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def task_types(self) -> list[str]:
        return sorted(self.task_counts)

    def stratum_of(self, reward: float) -> int:
        return bisect.bisect_right(self.strata, reward)

    def stratum_names(self) -> list[str]:
        """Human names of the strata: '< 0.5', '[0.5, 0.8)', '>= 0.8' for the default thresholds."""
        s = [f"{t:g}" for t in self.strata]
        if not s:
            return ["all"]
        return [f"< {s[0]}", *(f"[{a}, {b})" for a, b in itertools.pairwise(s)), f">= {s[-1]}"]

    def select(self, flt: Filter, labels: dict[str, str]) -> list[Entry]:
        """Entries passing the filter, in index order (file order)."""
        out = []
        for e in self.entries:
            if flt.stratum is not None and self.stratum_of(e.reward) != flt.stratum:
                continue
            if flt.task_type is not None and e.task_type != flt.task_type:
                continue
            if flt.status is not None and labels.get(e.rollout_id, "unlabelled") != flt.status:
                continue
            out.append(e)
        return out

    def raw_line(self, entry: Entry) -> bytes:
        """The rollout's line, re-read from its file."""
        source = self.sources[entry.source]
        stream = open_stream(source)
        try:
            if source.compression is None:
                stream.seek(entry.offset)
            else:  # compressed streams cannot seek: read up to the line
                remaining = entry.offset
                while remaining > 0:
                    data = stream.read(min(remaining, 1 << 20))
                    if not data:
                        break
                    remaining -= len(data)
            line = stream.readline()
        finally:
            stream.close()
        return line

    def load_rollout(self, entry: Entry) -> Rollout:
        """The full rollout of an entry, with every top-level field (for the metadata panel)."""
        source = self.sources[entry.source]
        restore = load_materialized(source.materialized).restore if source.materialized else None
        decoder = LineDecoder(all_fields=True, arguments="string")
        record = decoder.parse(self.raw_line(entry), source.path, entry.line, restore)
        if not isinstance(record, Rollout) or record.rollout_id != entry.rollout_id:
            raise RollforgeError(f"{source.path}:{entry.line} changed since the review server started")
        return record
