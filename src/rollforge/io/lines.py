"""Streaming lines out of rollouts files, whole or by byte range, with their line numbers.

Memory stays flat: one line at a time. Uncompressed files split into byte ranges (chunks) so several
workers can read one large file; a line belongs to the chunk in which it starts. Compressed files and
stdin are read as one chunk.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import zstandard

from rollforge.io.sources import STDIN, Source, is_url

BUFFER = 1 << 20
PIECE = 1 << 20  # a line is read this much at a time: longer ones are assembled, or skipped past the limit


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes [start, end) of a source; end None means to the end of the stream."""

    source: Source
    start: int = 0
    end: int | None = None


def open_stream(source: Source) -> BinaryIO:
    if source.path == STDIN:
        return sys.stdin.buffer
    if is_url(source.path):
        import fsspec

        raw = fsspec.open(source.path, "rb").open()
    else:
        raw = open(source.path, "rb", buffering=BUFFER)  # noqa: SIM115 (closed by the caller via the wrapper)
    if source.compression == "gz":
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
        stream.myfileobj = raw  # so that closing the gzip stream closes the file too, as gzip.open does
        return stream  # type: ignore[return-value]
    if source.compression == "zst":
        return io.BufferedReader(_Zstd(raw), buffer_size=BUFFER)
    return raw


class _Zstd(io.RawIOBase):
    """zstd frames, decompressed; a stream that ends inside a frame raises ``ZstdError`` (python-zstandard's
    ``stream_reader`` ends such a stream quietly, and the rest of a cut file would be lost unreported)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.zstd = raw, zstandard.ZstdDecompressor()
        self.frame = self.zstd.decompressobj()
        self.in_frame = False  # input fed to a frame that has not ended
        self.out = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.out:
            data = self.raw.read(1 << 16)  # small reads: a read's output is its size times the ratio
            if not data:
                if self.in_frame:
                    raise zstandard.ZstdError("the zstd stream ends inside a frame: the file is cut short")
                return 0
            pieces = []
            while data:
                if self.frame.eof:  # concatenated frames
                    self.frame = self.zstd.decompressobj()
                pieces.append(self.frame.decompress(data))
                data = self.frame.unused_data if self.frame.eof else b""
            self.in_frame = not self.frame.eof
            self.out = memoryview(b"".join(pieces))
        n = min(len(buffer), len(self.out))
        buffer[:n] = self.out[:n]
        self.out = self.out[n:]
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def plan_chunks(sources: list[Source], chunk_bytes: int) -> list[Chunk]:
    """Split uncompressed files into ~chunk_bytes ranges; others stay whole. Order is stable."""
    chunks: list[Chunk] = []
    for source in sources:
        if source.compression or source.path == STDIN or is_url(source.path) or source.size <= chunk_bytes:
            chunks.append(Chunk(source))
            continue
        starts = list(range(0, source.size, chunk_bytes))
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else None
            chunks.append(Chunk(source, start, end))
    return chunks


class LongLine(bytes):
    """Stands for a line longer than the source's ``max_line_bytes``: its bytes were skipped, never held
    (``length`` says how many there were, newline included)."""

    length = 0


class LineReader:
    """Iterates a chunk's non-blank lines; afterwards ``lines_seen`` is its physical line count. A line over
    the source's ``max_line_bytes`` comes as an empty :class:`LongLine`, read past in small pieces."""

    def __init__(self, chunk: Chunk) -> None:
        self.chunk = chunk
        self.lines_seen = 0

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        chunk = self.chunk
        limit = chunk.source.max_line_bytes
        stream = open_stream(chunk.source)
        try:
            pos = chunk.start
            if chunk.start:
                stream.seek(chunk.start - 1)
                # Skip the tail of the line that started before this chunk (it belongs to the previous one).
                pos = chunk.start - 1 + _skip_line(stream)
            end, first = chunk.end, min(PIECE, limit + 1)
            while end is None or pos < end:
                line = stream.readline(first)
                if not line:
                    break
                if len(line) == first and not line.endswith(b"\n"):  # a long line: read on, up to the limit
                    line = _rest_of_line(stream, line, limit)
                index = self.lines_seen
                self.lines_seen += 1
                offset = pos
                pos += line.length if isinstance(line, LongLine) else len(line)
                if not line.isspace():
                    yield index, offset, line
        finally:
            if chunk.source.path != STDIN:
                stream.close()


def _rest_of_line(stream: BinaryIO, start: bytes, limit: int) -> bytes:
    """The line that begins with ``start``, read in pieces (Ctrl-C is heard between them); a
    :class:`LongLine` once more than ``limit`` bytes (newline aside) are read, and the rest skipped."""
    pieces, size = [start], len(start)
    while not pieces[-1].endswith(b"\n"):
        piece = stream.readline(PIECE)
        if not piece:
            break
        size += len(piece)
        if size - piece.endswith(b"\n") > limit:
            long = LongLine()
            long.length = size + (0 if piece.endswith(b"\n") else _skip_line(stream))
            return long
        pieces.append(piece)
    return b"".join(pieces)


def _skip_line(stream: BinaryIO) -> int:
    """Read to the end of the current line in pieces (memory stays flat); the bytes read."""
    skipped = 0
    while piece := stream.readline(PIECE):
        skipped += len(piece)
        if piece.endswith(b"\n"):
            break
    return skipped
