"""Reading rollouts: every non-blank line becomes a Rollout or a Reject, in file order."""

from __future__ import annotations

import os
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import msgspec
import zstandard

from rollforge.decode import LineDecoder, Restore, object_fields
from rollforge.errors import RollforgeError
from rollforge.io.kinds import discover_rollouts
from rollforge.io.lines import Chunk, LineReader, LongLine
from rollforge.io.sources import Discovery, Source, is_url
from rollforge.limits import DEFAULT_MAX_LINE_BYTES
from rollforge.rollout import Head, Reject, Rollout

Record = Rollout | Reject
CORRUPT = (OSError, EOFError, zlib.error, zstandard.ZstdError)


class _Keys(msgspec.Struct):
    _ng_task_index: Any = None
    _ng_rollout_index: Any = None


class Materialized:
    """Index of a *_materialized_inputs file: (task index, rollout index) -> that input row's fields.

    For a plain local file only sorted keys and offsets are kept (16 bytes a row, in arrays) and rows are
    read back on demand; compressed or remote ones keep their lines.
    """

    def __init__(self, path: str) -> None:
        self.source = Source(path, 0)
        seekable = self.source.compression is None and not is_url(path)
        self.fd = os.open(path, os.O_RDONLY) if seekable else None
        self.lines: dict[tuple[Any, Any], bytes] = {}  # rows without int indices, or not seekable
        keys_, offsets, lengths = array("q"), array("q"), array("q")  # 24 bytes a row, not a tuple each
        keys = msgspec.json.Decoder(_Keys)
        try:
            for _, offset, line in LineReader(Chunk(self.source)):
                try:
                    k = keys.decode(line)
                except msgspec.MsgspecError:
                    continue  # a bad planned row only means nothing to restore for it
                packed = _pack(k._ng_task_index, k._ng_rollout_index)
                if seekable and packed is not None:
                    keys_.append(packed)
                    offsets.append(offset)
                    lengths.append(len(line))
                else:
                    self.lines[(k._ng_task_index, k._ng_rollout_index)] = line
        except CORRUPT as exc:
            raise RollforgeError(f"cannot read companion file {path}: {exc}") from None
        self.keys, self.offsets, self.lengths = _sorted_by_key(keys_, offsets, lengths)

    def line(self, task_index: Any, rollout_index: Any) -> bytes | None:
        """The input row planned for this (task index, rollout index), as read; None if there is none."""
        line = self.lines.get((task_index, rollout_index))
        packed = _pack(task_index, rollout_index)
        if line is None and packed is not None and self.fd is not None:
            at = bisect_left(self.keys, packed)
            if at < len(self.keys) and self.keys[at] == packed:
                line = os.pread(self.fd, self.lengths[at], self.offsets[at])
        return line

    def restore(self, task_index: Any, rollout_index: Any) -> dict[str, Any] | None:
        """Every field of the planned input row (None if there is none, or it is not a JSON object)."""
        line = self.line(task_index, rollout_index)
        return None if line is None else object_fields(line)

    def restorer(self, decoder: LineDecoder) -> Restore:
        """``restore`` for one decoder: only the fields it keeps are decoded (a planned row repeats the
        whole prompt, which the rollout already holds)."""

        def restore(task_index: Any, rollout_index: Any) -> dict[str, Any] | None:
            line = self.line(task_index, rollout_index)
            return None if line is None else decoder.companion_fields(line)

        return restore


def _sorted_by_key(keys: array, offsets: array, lengths: array) -> tuple[array, array, array]:
    # A plain stable sort, not numpy: this runs in every worker, and importing numpy there would cost each
    # worker more memory than this short sort is worth (benchmarks/DESIGN.md).
    order = sorted(range(len(keys)), key=keys.__getitem__)
    keys, offsets, lengths = (array("q", [column[i] for i in order]) for column in (keys, offsets, lengths))
    return keys, offsets, lengths


def _pack(task_index: Any, rollout_index: Any) -> int | None:
    """Two small non-negative int indices as one int64 key; None for anything else."""
    ok = all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 31
        for v in (task_index, rollout_index)
    )
    return (task_index << 31) | rollout_index if ok else None


@lru_cache(maxsize=4)
def load_materialized(path: str) -> Materialized:
    """One index per process, shared by all chunks of the same file."""
    return Materialized(path)


def read_chunk(chunk: Chunk, decoder: LineDecoder, reader: LineReader | None = None) -> Iterator[Record]:
    """Records of one chunk. Line numbers are 1-based within the chunk (whole files: within the file).

    Pass your own ``reader`` to learn ``reader.lines_seen`` afterwards. A corrupt compressed stream ends
    the chunk with one ``unreadable_file`` reject.
    """
    for record, _ in read_chunk_raw(chunk, decoder, reader):
        assert not isinstance(record, Head)  # heads only come back when ``first_look`` is given
        yield record


def read_chunk_raw(
    chunk: Chunk,
    decoder: LineDecoder,
    reader: LineReader | None = None,
    first_look: Callable[[Head], str | None] | None = None,
) -> Iterator[tuple[Record | Head, bytes]]:
    """Like :func:`read_chunk`, with each record's raw line.

    With ``first_look``, each line is first decoded as a :class:`Head`; one that ``first_look`` drops (the
    filters' verdict on the cheap first look: a reason) is yielded as that Head, its ``dropped`` set to the
    reason, converted only to learn whether conversion rejects it (then it is that Reject instead); the
    others are converted from the struct their head was read from. A line over the source's
    ``max_line_bytes`` is a ``line_too_long`` Reject, never read into memory.
    """
    reader = reader or LineReader(chunk)
    materialized = chunk.source.materialized
    restore = load_materialized(materialized).restorer(decoder) if materialized else None
    path = chunk.source.path
    try:
        for index, _, line in reader:
            if isinstance(line, LongLine):
                yield long_line(line, path, index + 1, chunk.source.max_line_bytes), line
                continue
            if first_look is None:
                yield decoder.parse(line, path, index + 1, restore), line
                continue
            head = decoder.parse_head(line, path, index + 1, restore)
            if not isinstance(head, Head):
                yield head, line
            elif (reason := first_look(head)) is None:
                yield decoder.parse_rest(head, restore), line
            else:  # a filter drops it, unless conversion rejects it: a reject whatever the filters, as elsewhere
                head.dropped = reason
                yield decoder.conversion_reject(head) or head, line
    except CORRUPT as exc:
        yield Reject(path, reader.lines_seen + 1, "unreadable_file", f"cannot read further: {exc}"), b""


def long_line(line: LongLine, file: str, line_no: int, limit: int) -> Reject:
    message = f"the line is {line.length} bytes, over --max-line-bytes {limit}: skipped unread"
    return Reject(file, line_no, "line_too_long", message)


def iter_records(discovery: Discovery, decoder: LineDecoder | None = None) -> Iterator[Record]:
    """Every record of every source, in order, in this process."""
    decoder = decoder or LineDecoder()
    for source in discovery.sources:
        yield from read_chunk(Chunk(source), decoder)


def read_rollouts(
    paths: list[str],
    decoder: LineDecoder | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    fields: dict[str, tuple[str, ...]] | None = None,
) -> Iterator[Record]:
    """Rollouts and rejects of the given paths (files, directories, globs, '-'); a line over
    ``max_line_bytes`` is rejected (``line_too_long``) unread. ``fields`` (flag -> top-level fields it
    reads): refused up front when no rollout has one."""
    return iter_records(discover_rollouts(paths, max_line_bytes, fields), decoder)


def count_lines(path: str) -> int:
    """Non-blank lines of a file (used to count skipped companion files)."""
    try:
        return sum(1 for _ in LineReader(Chunk(Source(path, 0))))
    except CORRUPT as exc:
        raise RollforgeError(f"cannot read companion file {path}: {exc}") from None
