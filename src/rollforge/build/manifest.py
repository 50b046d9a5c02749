"""The manifest: exactly what went into a release and what came out, with the accounting that joins them."""

from __future__ import annotations

import hashlib
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    ``start`` is given to the scan, so the thread begins only once the workers are running."""

    def __init__(self, discovery: Discovery) -> None:
        self.paths = [s.path for s in discovery.sources if s.path != STDIN]
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future: Future[dict[str, str]] | None = None

    def start(self) -> None:
        self.future = self.pool.submit(lambda: {path: sha256_file(path) for path in self.paths})
        self.pool.shutdown(wait=False)

    def result(self) -> dict[str, str]:
        if self.future is None:
            self.start()
        assert self.future is not None
        return self.future.result()


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


def inputs_entry(
    discovery: Discovery, digests: dict[str, str], lines: dict[str, int]
) -> list[dict[str, Any]]:
    return [
        {"path": s.path, "bytes": s.size, "sha256": digests.get(s.path), "lines": lines.get(s.path, 0)}
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
