"""The in-memory index of what is under review: where each line is, and what the list page shows and filters.

The files are streamed once at start. Only a few small values per line stay in memory; a page is rendered
by re-reading its one line (a seek for plain files), so a 1 MB rollout costs memory only while its page is
built. Rejected lines are counted, never kept. :class:`Listing` is what the list, the filters and the
labels need; :class:`RolloutIndex` lists rollouts, ``rollforge.review.pairs.PairIndex`` DPO pairs.
"""

from __future__ import annotations

import bisect
import itertools
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rollforge.decode import LineDecoder
from rollforge.errors import RollforgeError
from rollforge.io.kinds import discover_rollouts
from rollforge.io.lines import Chunk, LineReader, open_stream
from rollforge.io.read import load_materialized, read_chunk_raw
from rollforge.io.sources import STDIN, Source
from rollforge.report.rows import content_text, conversation_chars
from rollforge.rollout import Reject, Rollout
from rollforge.schema import plain

DEFAULT_STRATA = (0.5, 0.8)
PREVIEW = 110  # characters of the prompt shown in a list row


@dataclass(frozen=True, slots=True)
class Entry:
    """One indexed rollout: enough to list and filter it, and to find its line again."""

    id: str  # the rollout id: what its label is stored under
    source: int  # position in RolloutIndex.sources
    offset: int  # byte offset of the line in the (decompressed) file
    line: int  # 1-based line number, for people
    reward: float
    task_type: str
    prompt_id: str
    preview: str  # the prompt's last user message, cut (shared by the rollouts of one prompt)
    turns: int  # assistant turns generated
    calls: int  # tool calls made
    chars: int  # characters generated: reasoning, text, tool calls and tool outputs

    @property
    def value(self) -> float | None:
        """What the reward strata cut."""
        return self.reward

    @property
    def group(self) -> str:
        """What the second filter of the list selects."""
        return self.task_type


class OffsetReader(LineReader):
    """A LineReader that remembers the byte offset of the line it yielded last."""

    last_offset = 0

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        for index, offset, line in super().__iter__():
            self.last_offset = offset
            yield index, offset, line


@dataclass(slots=True)
class Filter:
    """What the list page shows: a stratum (index into the strata), a group (task type or file), a status."""

    stratum: int | None = None
    group: str | None = None
    status: str | None = None  # unlabelled | accept | reject | flag


@dataclass(slots=True)
class Listing:
    """Entries (each with ``id``, ``source``, ``offset``, ``line``, ``value``, ``group``) and their filters."""

    sources: list[Source]
    entries: list[Any]
    strata: tuple[float, ...] = DEFAULT_STRATA
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> lines
    duplicates: int = 0  # identical lines: listed once
    by_id: dict[str, int] = field(default_factory=dict)  # id -> position in entries
    stratum_counts: list[int] = field(default_factory=list)  # entries per stratum, for the filter menu
    group_counts: Counter[str] = field(default_factory=Counter)  # entries per group

    def add(self, entry: Any) -> None:
        if entry.id in self.by_id:
            self.duplicates += 1
            return
        self.by_id[entry.id] = len(self.entries)
        self.entries.append(entry)

    def tally(self) -> None:
        """Fill the filter menus' counts once every entry is in."""
        self.stratum_counts = [0] * (len(self.strata) + 1)
        for e in self.entries:
            stratum = self.stratum_of(e.value)
            if stratum is not None:
                self.stratum_counts[stratum] += 1
            self.group_counts[e.group] += 1

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def groups(self) -> list[str]:
        return sorted(self.group_counts)

    def stratum_of(self, value: float | None) -> int | None:
        return None if value is None else bisect.bisect_right(self.strata, value)

    def stratum_names(self) -> list[str]:
        """Human names of the strata: '< 0.5', '[0.5, 0.8)', '>= 0.8' for the default thresholds."""
        s = [f"{t:g}" for t in self.strata]
        if not s:
            return ["all"]
        return [f"< {s[0]}", *(f"[{a}, {b})" for a, b in itertools.pairwise(s)), f">= {s[-1]}"]

    def select(self, flt: Filter, labels: dict[str, str]) -> list[Any]:
        """Entries passing the filter, in index order (file order)."""
        out = []
        for e in self.entries:
            if flt.stratum is not None and self.stratum_of(e.value) != flt.stratum:
                continue
            if flt.group is not None and e.group != flt.group:
                continue
            if flt.status is not None and labels.get(e.id, "unlabelled") != flt.status:
                continue
            out.append(e)
        return out

    def raw_line(self, entry: Any) -> bytes:
        """The entry's line, re-read from its file."""
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


def no_stdin(sources: list[Source]) -> None:
    if any(s.path == STDIN for s in sources):
        raise RollforgeError("review cannot read stdin", hint="pass files: pages re-read lines from them")


def prompt_preview(messages: list[dict[str, Any]]) -> str:
    """The prompt's last user message (the task at hand), on one line and cut to a list row's width."""
    users = [m for m in messages if m.get("role") == "user"] or messages[-1:]
    text = re.sub(r"\s+", " ", content_text(users[-1].get("content")) if users else "").strip()
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1].rstrip() + "…"


def tool_calls(messages: list[dict[str, Any]]) -> int:
    return sum(len(m.get("tool_calls") or ()) for m in messages)


@dataclass(slots=True)
class RolloutIndex(Listing):
    previews: dict[str, str] = field(default_factory=dict)  # prompt_id -> preview: repeats share one

    @classmethod
    def load(cls, paths: list[str], strata: tuple[float, ...] = DEFAULT_STRATA) -> RolloutIndex:
        discovery = discover_rollouts(paths)
        no_stdin(discovery.sources)
        # lazy_text: only the generated part is decoded, to measure it; arguments="string": show bad tool
        # arguments, raw.
        decoder = LineDecoder(lazy_text=True, arguments="string")
        index = cls(list(discovery.sources), [], tuple(sorted(strata)))
        for number, source in enumerate(index.sources):
            chunk = Chunk(source)
            reader = OffsetReader(chunk)
            for record, _ in read_chunk_raw(chunk, decoder, reader):
                if isinstance(record, Reject):
                    index.rejected[record.reason] += 1
                elif isinstance(record, Rollout):
                    if record.rollout_id in index.by_id:
                        index.duplicates += 1
                    else:
                        index.add(index._entry(record, number, reader.last_offset))
        index.tally()
        return index

    def _entry(self, r: Rollout, source: int, offset: int) -> Entry:
        preview = self.previews.get(r.prompt_id)
        if preview is None:
            preview = self.previews[r.prompt_id] = prompt_preview(r.prompt)
        completion = plain(r.completion)
        chars = conversation_chars(completion, None)
        # Interned: a few task types repeat over every entry.
        return Entry(
            r.rollout_id,
            source,
            offset,
            r.line,
            r.reward,
            sys.intern(r.task_type),
            r.prompt_id,
            preview,
            r.assistant_turns,
            tool_calls(completion),
            chars,
        )

    def load_rollout(self, entry: Entry) -> Rollout:
        """The full rollout of an entry, with every top-level field (for the metadata panel)."""
        source = self.sources[entry.source]
        restore = load_materialized(source.materialized).restore if source.materialized else None
        decoder = LineDecoder(all_fields=True, arguments="string")
        record = decoder.parse(self.raw_line(entry), source.path, entry.line, restore)
        if not isinstance(record, Rollout) or record.rollout_id != entry.id:
            raise RollforgeError(f"{source.path}:{entry.line} changed since the review server started")
        return record
