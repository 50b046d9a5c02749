"""Inputs that are not rollouts, named before any work is done.

Chat/SFT rows, preference rows, NeMo Gym task rows (not collected yet) and rollforge releases all look
enough like rollouts to be read as such, line after line rejected (``no_prompt``, ``no_response``), or worse,
quietly half-read (a release's review sample). Each rollouts file's first few rows are looked at, and a file
where none looks like a rollout while most look like one of those kinds is refused with one line that says
what it looks like and what to do. A file whose first rows cannot be read is left to the reader, which
names every bad line. Standard input cannot be read twice, so it is not looked at.
"""

from __future__ import annotations

import difflib
import glob
import os
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import zstandard

from rollforge.errors import RollforgeError
from rollforge.io.lines import Chunk, LineReader, LongLine, open_stream
from rollforge.io.sources import STDIN, Discovery, Source, discover
from rollforge.limits import DEFAULT_MAX_LINE_BYTES

RELEASE_MANIFEST = "manifest.json"  # what makes a directory a rollforge release
PEEK_ROWS = 5
FIELD_ROWS = 50  # rows of each file whose keys are the "fields seen"
BLOCK = 1 << 20
UNREADABLE = (OSError, EOFError, zlib.error, zstandard.ZstdError)
# Names every rollout answers (see Rollout.field), and its environment (rollforge.environments).
ALWAYS_THERE = frozenset({"reward", "rollout_id", "prompt_id", "task_type", "env"})

ROLLOUT = "rollout"
# kind -> (what the rows look like, what to do with them); {path} is the file
OTHER_KINDS: dict[str, tuple[str, str]] = {
    "chat": (
        "chat SFT rows (messages)",
        "rollforge reads NeMo Gym rollouts (responses_create_params + response + reward); this file is "
        "training data already: check it with `rollforge report {path}`",
    ),
    "preference": (
        "preference rows (chosen/rejected)",
        "rollforge reads NeMo Gym rollouts; this file is DPO data already: check it with "
        "`rollforge report {path}` or look at its pairs with `rollforge review {path}`",
    ),
    "task": (
        "NeMo Gym task rows with no response",
        "run `rollforge collect {path} --base-url URL --model M --verifier V -o rollouts.jsonl` on them, "
        "then read the rollouts it writes",
    ),
}


def row_kind(row: Any) -> str | None:
    """``rollout``, one of :data:`OTHER_KINDS`, or None for a row that looks like nothing known."""
    if not isinstance(row, dict):
        return None
    if "response" in row:
        return ROLLOUT
    if "chosen" in row and "rejected" in row:
        return "preference"
    if "messages" in row or "conversations" in row:
        return "chat"
    if "responses_create_params" in row:
        return "task"
    return None


def discover_rollouts(
    paths: list[str],
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    fields: dict[str, tuple[str, ...]] | None = None,
) -> Discovery:
    """:func:`rollforge.io.sources.discover`, refusing releases and files that hold something else, and
    ``fields`` (flag -> top-level fields it reads) that no rollout has."""
    for path in paths:
        refuse_release(path)
    discovery = discover(paths, max_line_bytes)
    for source in discovery.sources:
        refuse_other_kind(source)
    if fields:
        refuse_missing_fields(discovery.sources, fields)
    return discovery


def refuse_release(path: str) -> None:
    """A rollforge release directory (or a directory of releases) is not rollouts."""
    if not os.path.isdir(path):
        return
    hint = (
        "rollforge reads rollouts, and a release holds what was made from them: give the rollouts it was "
        "built from (its manifest lists them), or use `rollforge report {0}` / `rollforge train --data {0}`"
    )
    if os.path.isfile(os.path.join(path, RELEASE_MANIFEST)):
        raise RollforgeError(
            f"{path} is a rollforge release ({RELEASE_MANIFEST}), not rollouts", hint.format(path)
        )
    inside = sorted(glob.glob(os.path.join(glob.escape(path), "*", RELEASE_MANIFEST)))
    if inside:
        release = os.path.dirname(inside[0])
        raise RollforgeError(
            f"{path} holds rollforge releases ({release}), not rollouts", hint.format(release)
        )


def refuse_other_kind(source: Source) -> None:
    kind = peek_kind(source)
    if kind in OTHER_KINDS:
        looks, todo = OTHER_KINDS[kind]
        raise RollforgeError(f"{source.path} looks like {looks}, not rollouts", todo.format(path=source.path))


def peek_kind(source: Source, rows: int = PEEK_ROWS) -> str | None:
    """The kind of the first ``rows`` JSON rows: ``rollout`` as soon as one is; otherwise the most common
    kind among them (None when nothing could be read, or most rows look like nothing known)."""
    kinds: Counter[str | None] = Counter()
    for row in first_rows(source, rows):
        kind = row_kind(row)
        if kind == ROLLOUT:
            return ROLLOUT
        kinds[kind] += 1
    return kinds.most_common(1)[0][0] if kinds else None


def first_rows(source: Source, rows: int) -> Iterator[Any]:
    """The first ``rows`` JSON values of a file (bad and overlong lines looked past); nothing for standard
    input (it cannot be read twice) or a file that cannot be read (the reader names what is wrong with it)."""
    if source.path == STDIN:
        return
    found = 0
    try:
        for _, _, line in LineReader(Chunk(source)):
            if isinstance(line, LongLine):
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            found += 1
            if found >= rows:
                return
    except UNREADABLE:
        return


def refuse_missing_fields(sources: list[Source], wanted: dict[str, tuple[str, ...]]) -> None:
    """A flag that reads a top-level field no rollout has would drop (or lump together) every rollout
    quietly: refused, with the closest fields seen. The first rows of each file are looked at; a field not
    among their keys is searched for in every byte of the files before it is called missing."""
    roots = {root for names in wanted.values() for root in names} - ALWAYS_THERE
    if not roots or any(source.path == STDIN for source in sources):
        return
    # a *_materialized_inputs companion restores task fields the rollouts lines lack
    files = sources + [Source(s.materialized, 0) for s in sources if s.materialized]
    seen: set[str] = set()
    for source in files:
        for row in first_rows(source, FIELD_ROWS):
            if isinstance(row, dict):
                seen.update(row)
    missing = {root for root in roots - seen if not any(mentions(s, root) for s in files)}
    for flag, names in wanted.items():
        for root in names:
            if root in missing:
                hint = closest(root, sorted(seen | ALWAYS_THERE))
                raise RollforgeError(f"{flag} reads the field {root!r}, which no rollout has", hint=hint)


def closest(name: str, known: list[str]) -> str:
    """ "did you mean ...?" over the names seen, or the first of them when none is close."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(map(repr, close)) + "?"
    return "fields seen: " + ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")


def mentions(source: Source, name: str) -> bool:
    """Whether ``"name"`` occurs anywhere in the file's bytes (read in blocks; memory stays flat)."""
    needle = orjson.dumps(name)
    tail = b""
    try:
        with open_stream(source) as stream:
            while block := stream.read(BLOCK):
                if needle in tail + block:
                    return True
                tail = block[-len(needle) :]
    except UNREADABLE:
        return True  # cannot tell: the reader reports the file
    return False
