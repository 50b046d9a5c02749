"""Finding rollouts files: paths, directories, globs and stdin; NeMo Gym's companion files recognised.

A directory is searched recursively for ``*.jsonl``, ``*.jsonl.gz`` and ``*.jsonl.zst``. Companion files
that sit beside a rollouts file are never read as rollouts:

- ``<stem>_failures.jsonl``: rows NeMo Gym could not finish; skipped, their lines counted;
- ``<stem>_aggregate_metrics.json``: NeMo Gym's summary; noted;
- ``<stem>_materialized_inputs.jsonl``: every planned input row; joined to ``<stem>.jsonl`` on
  ``(_ng_task_index, _ng_rollout_index)`` to restore dataset fields the verifier did not echo back.
"""

from __future__ import annotations

import glob
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rollforge.errors import RollforgeError
from rollforge.limits import DEFAULT_MAX_LINE_BYTES

SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")
COMPANIONS = {
    "_failures": "failures",
    "_materialized_inputs": "materialized_inputs",
    "_aggregate_metrics": "aggregate_metrics",
}
STDIN = "-"


@dataclass(frozen=True, slots=True)
class Source:
    """One rollouts file (or stdin)."""

    path: str
    size: int
    materialized: str | None = None  # the companion *_materialized_inputs file, when there is one
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES  # a longer line is rejected (line_too_long), never held

    @property
    def compression(self) -> str | None:
        if self.path.endswith(".gz"):
            return "gz"
        if self.path.endswith(".zst"):
            return "zst"
        return None


@dataclass(frozen=True, slots=True)
class Companion:
    path: str
    kind: str  # failures | materialized_inputs | aggregate_metrics


@dataclass(slots=True)
class Discovery:
    sources: list[Source] = field(default_factory=list)
    companions: list[Companion] = field(default_factory=list)
    same_file: list[dict[str, str]] = field(default_factory=list)  # {path, same_as}: named twice, read once

    @property
    def total_bytes(self) -> int:
        return sum(s.size for s in self.sources)


def split_name(path: str) -> tuple[str, str]:
    """(stem, suffix) with the rollouts suffix removed: 'a/b_failures.jsonl.gz' -> ('a/b_failures', ...)."""
    for suffix in (".jsonl.gz", ".jsonl.zst", ".json.gz", ".jsonl", ".json"):
        if path.endswith(suffix):
            return path[: -len(suffix)], suffix
    return path, ""


def companion_kind(path: str) -> str | None:
    stem, _ = split_name(os.path.basename(path))
    for tail, kind in COMPANIONS.items():
        if stem.endswith(tail):
            return kind
    return None


def is_url(path: str) -> bool:
    """fsspec URLs (s3://, gs://, hf://, file://, ...) are read through fsspec."""
    return "://" in path


def _expand_url(path: str) -> list[str]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(path)
    if any(ch in root for ch in "*?["):
        found = fs.glob(root)
    elif fs.isdir(root):
        found = [p for p in fs.find(root) if p.endswith(SUFFIXES) or companion_kind(p) == "aggregate_metrics"]
    elif fs.exists(root):
        found = [root]
    else:
        raise RollforgeError(f"no such file or directory: {path}")
    if not found:
        raise RollforgeError(
            f"no rollouts files at {path}", hint="expected *.jsonl, *.jsonl.gz or *.jsonl.zst files"
        )
    return sorted(fs.unstrip_protocol(p) for p in found)


def size_of(path: str) -> int:
    if is_url(path):
        import fsspec

        fs, root = fsspec.core.url_to_fs(path)
        return int(fs.size(root) or 0)
    return os.path.getsize(path)


def _expand(path: str) -> list[str]:
    if path == STDIN:
        return [STDIN]
    if is_url(path):
        return _expand_url(path)
    if any(ch in path for ch in "*?["):
        found = sorted(glob.glob(path, recursive=True))
        if not found:
            raise RollforgeError(
                f"no files match {path!r}", hint="check the pattern, or quote it for the shell"
            )
        return [p for f in found for p in (_expand(f) if os.path.isdir(f) else [f])]
    if os.path.isdir(path):
        files = sorted(
            str(p)
            for p in Path(path).rglob("*")
            if p.is_file() and (str(p).endswith(SUFFIXES) or companion_kind(str(p)) == "aggregate_metrics")
        )
        if not any(f.endswith(SUFFIXES) for f in files):
            raise RollforgeError(
                f"no rollouts files under {path}", hint="expected *.jsonl, *.jsonl.gz or *.jsonl.zst files"
            )
        return files
    if not os.path.exists(path):
        raise RollforgeError(f"no such file or directory: {path}")
    return [path]


def _sibling_companions(names: list[str]) -> list[str]:
    """A rollouts file named on its own still brings its NeMo Gym companions from beside it."""
    found = []
    for name in names:
        if name == STDIN or is_url(name) or companion_kind(name) is not None:
            continue
        stem = split_name(name)[0]
        for tail in ("_materialized_inputs", "_failures"):
            for suffix in SUFFIXES:
                if os.path.isfile(stem + tail + suffix):
                    found.append(stem + tail + suffix)
    return found


def file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a local file or of what stdin reads; None for URLs, or what cannot be stat'ed.
    Two names with one identity are one file (a link, ``./x/../a.jsonl``)."""
    try:
        if path == STDIN:
            return _identity(os.fstat(sys.stdin.fileno()))
        return None if is_url(path) else _identity(os.stat(path))
    except (OSError, ValueError, AttributeError):  # a closed or replaced stdin has no descriptor
        return None


def _identity(st: os.stat_result) -> tuple[int, int] | None:
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def discover(paths: list[str], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Discovery:
    """Expand user paths into rollouts sources (in a stable order) and companion files. A file named twice
    (by two paths, or a link) is read once, under its first name; ``same_file`` lists the others."""
    if not paths:
        raise RollforgeError("no input given", hint="pass rollouts files, directories, globs, or - for stdin")
    found = Discovery()
    seen: set[str] = set()
    first_name: dict[tuple[int, int], str] = {}
    names: list[str] = []
    for path in paths:
        for name in _expand(path):
            if name not in seen:
                seen.add(name)
                if _named_before(name, first_name, found):
                    continue
                names.append(name)
    names += [c for c in _sibling_companions(names) if c not in seen and not _named_before(c, first_name)]
    materialized = {split_name(c)[0]: c for c in names if companion_kind(c) == "materialized_inputs"}
    for name in names:
        kind = companion_kind(name)
        if kind is not None:
            found.companions.append(Companion(name, kind))
        elif name == STDIN:
            found.sources.append(Source(STDIN, 0, max_line_bytes=max_line_bytes))
        else:
            stem = split_name(name)[0]
            companion = materialized.get(stem + "_materialized_inputs")
            found.sources.append(Source(name, size_of(name), companion, max_line_bytes))
    if not found.sources:
        raise RollforgeError("no rollouts files among the inputs (only companion files)")
    return found


def _named_before(name: str, first_name: dict[tuple[int, int], str], found: Discovery | None = None) -> bool:
    """Whether ``name`` is a file already named otherwise (noted in ``found.same_file`` when given)."""
    identity = file_identity(name)
    if identity is None:
        return False
    if identity in first_name:
        if found is not None:
            found.same_file.append({"path": name, "same_as": first_name[identity]})
        return True
    first_name[identity] = name
    return False
