"""``report_paths``: a report from release directories, released JSONL files or rollouts (what the CLI runs).

A path is
- a release directory (it holds ``manifest.json``): its ``sft/*.jsonl`` and ``dpo/*.jsonl`` files, each file
  stem naming its split, and the manifest's accounting; ``review/sample.jsonl`` repeats rows, so it is not read;
- a released JSONL file (SFT rows have ``messages``, DPO rows ``chosen`` and ``rejected``): a stem of
  ``train``, ``validation`` or ``test`` names its split;
- anything else that ``rollforge inspect`` reads (rollouts files, directories, globs, stdin): each rollout
  is an SFT-shaped row, each rejected line counted by reason.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson

from rollforge.environments import environment_of
from rollforge.errors import RollforgeError
from rollforge.io.lines import Chunk, LineReader, LongLine, plan_chunks
from rollforge.io.read import iter_records
from rollforge.io.sources import STDIN, Discovery, Source, discover, file_identity, split_name
from rollforge.limits import DEFAULT_MAX_LINE_BYTES
from rollforge.parallel import Call, default_workers, run_calls
from rollforge.progress import track
from rollforge.report.compute import ReportBuilder
from rollforge.report.data import ReportData
from rollforge.report.metrics import UNSPLIT
from rollforge.rollout import Rollout

SPLIT_STEMS = ("train", "validation", "test")
MANIFEST = "manifest.json"


def row_kind(row: Any) -> str:
    """ "dpo", "sft" or "rollouts" (anything that is not a released row is left to the rollouts reader)."""
    if isinstance(row, dict) and "chosen" in row and "rejected" in row:
        return "dpo"
    if isinstance(row, dict) and "messages" in row and "response" not in row:
        return "sft"
    return "rollouts"


def _peek_kind(source: Source) -> str:
    if source.path == STDIN:
        return "rollouts"  # stdin cannot be read twice
    for _, _, line in LineReader(Chunk(source)):
        try:
            return row_kind(orjson.loads(line))
        except orjson.JSONDecodeError:
            return "rollouts"
    return "rollouts"


def _released_rows(path: str, chunk: Chunk | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a released file, or of one byte range of it (a row belongs to the range it starts in)."""
    chunk = chunk or Chunk(Source(path, os.path.getsize(path)))
    for index, offset, line in LineReader(chunk):
        if isinstance(line, LongLine):
            raise RollforgeError(
                f"{path}:{_line_number(chunk, index, offset)}: a row of {line.length} bytes, over the "
                f"{chunk.source.max_line_bytes}-byte line limit",
                hint="is this a released rollforge file?",
            )
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise RollforgeError(
                f"{path}:{_line_number(chunk, index, offset)}: not valid JSON ({exc})"
            ) from exc
        if not isinstance(row, dict):
            raise RollforgeError(f"{path}:{_line_number(chunk, index, offset)}: a row must be a JSON object")
        yield row


def _line_number(chunk: Chunk, index: int, offset: int) -> int:
    """The 1-based line number in the file of the line at ``offset`` (counted only for an error message)."""
    if not chunk.start:
        return index + 1
    newlines = 0
    with open(chunk.source.path, "rb") as fh:
        while offset > 0 and (block := fh.read(min(offset, 1 << 20))):
            newlines += block.count(b"\n")
            offset -= len(block)
    return newlines + 1


def _split_of(path: str) -> str:
    stem = os.path.basename(split_name(path)[0])
    return stem if stem in SPLIT_STEMS else UNSPLIT


class _Reader:
    """Routes every path's rows into one builder and remembers what the report should say about them."""

    def __init__(
        self, builder: ReportBuilder, workers: int | None = 1, max_line_bytes: int | None = None
    ) -> None:
        self.builder = builder
        self.workers = workers
        self.max_line_bytes = max_line_bytes or DEFAULT_MAX_LINE_BYTES
        self.first_name: dict[tuple[int, int], str] = {}  # a file named twice is read once
        self.same_file: list[dict[str, str]] = []
        self.manifest: dict[str, Any] | None = None
        self.splits: dict[str, list[str]] = {}
        self.rollouts: list[Source] = []
        self.companions: list[Any] = []

    def released(self, kind: str, path: str, shown: str) -> None:
        split = _split_of(path)
        if split != UNSPLIT:
            self.splits.setdefault(split, []).append(shown)
        add = self.builder.add_dpo if kind == "dpo" else self.builder.add_sft
        for row in track(_released_rows(path), f"reading {shown}"):
            add(row, split)

    def released_files(self, kind: str, paths: list[str], directory: str) -> None:
        for path in paths:
            self.released(kind, path, os.path.relpath(path, directory))

    def release(self, directory: str) -> None:
        if self.manifest is not None:
            raise RollforgeError("more than one release directory given", hint="report one release at a time")
        try:
            with open(os.path.join(directory, MANIFEST), "rb") as fh:
                manifest = orjson.loads(fh.read())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise RollforgeError(f"cannot read {directory}/{MANIFEST}: {exc}") from exc
        if not isinstance(manifest, dict):
            raise RollforgeError(f"{directory}/{MANIFEST} is not a JSON object")
        self.manifest = manifest
        files = {
            kind: sorted(glob.glob(os.path.join(glob.escape(directory), kind, "*.jsonl*")))
            for kind in ("sft", "dpo")
        }
        if self.workers == 1:
            for kind, paths in files.items():
                self.released_files(kind, paths, directory)
            return
        # Both kinds, cut into byte ranges, on every core: a builder per part, merged in file order.
        calls: list[Call] = [
            (_read_part, (part, directory, self.builder.options)) for part in _parts(files, self.workers)
        ]
        for builder, splits in run_calls(calls, self.workers):
            self.builder.merge(builder)
            for split, shown in splits.items():
                self._name_files(split, shown)

    def _name_files(self, split: str, shown: list[str]) -> None:
        """Remember which files a split was read from (a file read in several parts is named once)."""
        known = self.splits.setdefault(split, [])
        for name in shown:
            if name not in known:
                known.append(name)

    def other(self, path: str) -> None:
        if os.path.isdir(path) and not os.path.exists(os.path.join(path, MANIFEST)):
            inside = sorted(glob.glob(os.path.join(glob.escape(path), "*", MANIFEST)))
            if inside:
                raise RollforgeError(
                    f"{path} holds releases, not one release",
                    hint="pass one of them: " + ", ".join(os.path.dirname(m) for m in inside),
                )
        discovery = discover([path], self.max_line_bytes)
        self.companions.extend(discovery.companions)
        self.same_file += discovery.same_file
        for source in discovery.sources:
            identity = file_identity(source.path)
            if identity in self.first_name:
                self.same_file.append({"path": source.path, "same_as": self.first_name[identity]})
                continue
            if identity is not None:
                self.first_name[identity] = source.path
            kind = _peek_kind(source)
            if kind == "rollouts":
                self.rollouts.append(source)
            else:
                self.released(kind, source.path, source.path)

    def read_rollouts(self) -> dict[str, Any] | None:
        """Feed the rollouts as SFT-shaped rows; their accounting (lines, rollouts, rejects by reason)."""
        if not self.rollouts:
            return None
        lines, rejected = 0, Counter[str]()
        for record in track(
            iter_records(Discovery(self.rollouts, self.companions)), "reading rollouts", unit="lines"
        ):
            lines += 1
            if not isinstance(record, Rollout):
                rejected[record.reason] += 1
                continue
            row = {
                "messages": record.messages,
                "tools": record.tools,
                "reward": record.reward,
                "task_type": record.task_type,
                "prompt_id": record.prompt_id,
                "truncated": record.truncated,
                "env": environment_of(record),
            }
            self.builder.add_sft(row)
        accounting = {
            "lines": lines,
            "rollouts": lines - rejected.total(),
            "rejected": dict(rejected.most_common()),
        }
        if self.same_file:
            accounting["same_file"] = self.same_file
        return accounting


Part = list[tuple[str, Chunk]]  # (kind, byte range of a released file), in file order


def _parts(files: dict[str, list[str]], workers: int | None) -> list[Part]:
    """The files of both kinds as up to ``workers`` parts of about equal size, each a run of byte ranges in
    file order (ranges of a quarter part each, so the parts come out even however the files are sized)."""
    workers = workers or default_workers()
    sources = [(kind, Source(path, os.path.getsize(path))) for kind, paths in files.items() for path in paths]
    total = sum(source.size for _, source in sources)
    share = total / workers or 1.0
    parts: list[Part] = [[] for _ in range(workers)]
    done = 0  # bytes before the current range, over all files
    for kind, source in sources:
        for chunk in plan_chunks([source], max(1 << 20, int(share / 4) + 1)):
            parts[min(workers - 1, int(done / share))].append((kind, chunk))
            done += (chunk.end or source.size) - chunk.start
    return [part for part in parts if part]


def _read_part(
    part: Part, directory: str, options: dict[str, Any]
) -> tuple[ReportBuilder, dict[str, list[str]]]:
    """One part of a release's files, read into a builder of its own (and the splits its files name)."""
    builder, splits = ReportBuilder(**options), dict[str, list[str]]()
    for kind, chunk in part:
        path = chunk.source.path
        split = _split_of(path)
        if split != UNSPLIT:  # a file cut into several ranges is named once, by _Reader._name_files
            splits.setdefault(split, []).append(os.path.relpath(path, directory))
        add = builder.add_dpo if kind == "dpo" else builder.add_sft
        for row in _released_rows(path, chunk):
            add(row, split)
    return builder, splits


def report_paths(
    paths: list[str],
    tokenizer: str | None = None,
    max_tokens: int | None = None,
    workers: int | None = 1,
    max_line_bytes: int | None = None,
) -> ReportData:
    """The report of release directories, released SFT/DPO JSONL files and/or rollouts (see module doc);
    a release's SFT and DPO files are read on up to ``workers`` cores (None: all). A rollouts line over
    ``max_line_bytes`` is rejected unread."""
    if not paths:
        raise RollforgeError(
            "no input given", hint="pass a release directory, released JSONL files or rollouts"
        )
    reader = _Reader(ReportBuilder(tokenizer=tokenizer, max_tokens=max_tokens), workers, max_line_bytes)
    for path in paths:
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST)):
            reader.release(path)
        else:
            reader.other(path)
    accounting = reader.read_rollouts()
    return reader.builder.finish(
        sources=list(paths),
        splits={split: ", ".join(files) for split, files in reader.splits.items()},
        manifest=reader.manifest,
        accounting=accounting,
    )
