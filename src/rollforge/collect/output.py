"""The output file: appended one complete line at a time, and read back on ``--resume``.

Each finished row is written with a single ``write`` of its whole line (JSON + newline) to a file opened
with ``O_APPEND`` and no user-space buffer, so the bytes reach the kernel at once and a crash of this
process never leaves half a line. A power loss or a killed writer from another tool still can: on resume a
last line without its newline is cut off (with a warning) before anything is appended after it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from rollforge.collect.tasks import ROLLOUT_INDEX, TASK_INDEX, Key


@dataclass(slots=True)
class Existing:
    """What a previous run left in the output file."""

    keys: set[Key] = field(default_factory=set)
    rewards: dict[Key, float] = field(default_factory=dict)
    dropped_partial: int = 0  # bytes of a trailing partial line cut off
    unreadable: int = 0  # complete lines that are not a JSON object with integer indices


def scan(path: str) -> Existing:
    """Keys finished in ``path``; a trailing partial line is cut off (the file is truncated in place)."""
    found = Existing()
    if not os.path.exists(path):
        return found
    good_end = 0
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                found.dropped_partial = len(line)
                break
            good_end += len(line)
            if line.strip():
                _add(found, line)
    if found.dropped_partial:
        os.truncate(path, good_end)
    return found


def _add(found: Existing, line: bytes) -> None:
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        found.unreadable += 1
        return
    key = (row.get(TASK_INDEX), row.get(ROLLOUT_INDEX)) if isinstance(row, dict) else None
    if key is None or not all(isinstance(k, int) and not isinstance(k, bool) for k in key):
        found.unreadable += 1
        return
    found.keys.add(key)  # type: ignore[arg-type]
    reward = row.get("reward")
    if isinstance(reward, int | float) and not isinstance(reward, bool):
        found.rewards[key] = float(reward)  # type: ignore[index]


class LineAppender:
    """Appends JSON lines; each line lands with one unbuffered write."""

    def __init__(self, path: str, truncate: bool = False) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        self.path = path
        self.fd = os.open(path, flags, 0o666)
        self.lines = 0

    def write(self, row: dict[str, Any]) -> None:
        data = memoryview(orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        while data:  # a regular file takes it in one call; the loop only guards a short write
            written = os.write(self.fd, data)
            data = data[written:]
        self.lines += 1

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)

    def __enter__(self) -> LineAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def failure_row(key: Key, stage: str, reason: str, message: str, attempts: int) -> dict[str, Any]:
    """A line of ``<stem>_failures.jsonl``: the key, the stage that failed, why, after how many attempts."""
    return {
        TASK_INDEX: key[0],
        ROLLOUT_INDEX: key[1],
        "stage": stage,
        "reason": reason,
        "error": message,
        "attempts": attempts,
    }
