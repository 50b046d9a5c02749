"""The manifest: exactly what went into a release and what came out, with the accounting that joins them."""

from __future__ import annotations

import contextlib
import hashlib
import io
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from rollforge.io.sources import STDIN, Discovery, is_url
from rollforge.version import __version__

MANIFEST = "manifest.json"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sha256_file(path: str) -> str:
    """sha256 of a file's bytes as stored (compressed files are hashed compressed)."""
    digest = hashlib.sha256()
    if is_url(path):
        import fsspec

        opened = fsspec.open(path, "rb")
    else:
        opened = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    with opened as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


class InputHashes:
    """sha256 of every input, computed on a thread while the scan runs (hashlib releases the GIL).
    ``start`` is given to the scan, so the thread begins only once the workers are running. Standard input
    cannot be read twice: it is hashed as the scan reads it (``stdin_tap``)."""

    def __init__(self, discovery: Discovery) -> None:
        self.paths = [s.path for s in discovery.sources if s.path != STDIN]
        self.reads_stdin = len(self.paths) < len(discovery.sources)
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future: Future[dict[str, str]] | None = None
        self.stdin = _Tap(None)

    @contextlib.contextmanager
    def stdin_tap(self) -> Iterator[None]:
        """While the block reads standard input (in this process), count and hash its bytes."""
        if not self.reads_stdin:
            yield
            return
        saved, self.stdin = sys.stdin, _Tap(sys.stdin.buffer)
        sys.stdin = io.TextIOWrapper(io.BufferedReader(self.stdin, 1 << 20))
        try:
            yield
        finally:
            sys.stdin = saved

    def start(self) -> None:
        self.future = self.pool.submit(lambda: {path: sha256_file(path) for path in self.paths})
        self.pool.shutdown(wait=False)

    def result(self) -> dict[str, str]:
        if self.future is None:
            self.start()
        assert self.future is not None
        digests = self.future.result()
        if self.reads_stdin:
            digests[STDIN] = self.stdin.sha256.hexdigest()
        return digests


class _Tap(io.RawIOBase):
    """A raw stream that passes another's bytes through, counting and hashing them."""

    def __init__(self, raw: BinaryIO | None) -> None:
        self.raw, self.bytes, self.sha256 = raw, 0, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        assert self.raw is not None
        data = self.raw.read1(len(buffer)) if hasattr(self.raw, "read1") else self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.bytes += len(data)
        self.sha256.update(data)
        return len(data)


def git_commit(cwd: str = ".") -> dict[str, Any] | None:
    """The commit (and whether the tree is dirty) of the working directory's repository, if it is one."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def inputs_entry(discovery: Discovery, hashes: InputHashes, lines: dict[str, int]) -> list[dict[str, Any]]:
    digests = hashes.result()
    return [
        {
            "path": s.path,
            "bytes": hashes.stdin.bytes if s.path == STDIN else s.size,
            "sha256": digests.get(s.path),
            "lines": lines.get(s.path, 0),
        }
        for s in discovery.sources
    ]


def output_entry(root: Path, path: Path, rows: int, sha256: str | None = None) -> dict[str, Any]:
    return {
        "path": str(path.relative_to(root)),
        "rows": rows,
        "bytes": path.stat().st_size,
        "sha256": sha256 or sha256_file(str(path)),
    }


def manifest(
    recipe: dict[str, Any],
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    accounting: dict[str, Any],
    started: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    return {
        "rollforge_version": __version__,
        "created_at": started,
        "finished_at": now(),
        "git": git_commit(),
        "seed": recipe["seed"],
        "recipe": recipe,
        "inputs": inputs,
        "outputs": outputs,
        "accounting": accounting,
        **extra,
    }
