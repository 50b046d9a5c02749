"""The review labels store: one SQLite file, the current label per rollout plus the full history.

WAL mode lets the review server write while the SFT/DPO filters read the same file. Every write is one
short ``BEGIN IMMEDIATE`` transaction (history row + current row together), so two reviewers labelling at
once never lose a label. A ``meta`` row marks the file as ours: readers refuse any other file rather than
guess, and the server refuses to add tables to someone else's database.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

import orjson

from rollforge.errors import RollforgeError
from rollforge.io.target import open_output

LABELS = ("accept", "reject", "flag")
APP = "rollforge-review"
SCHEMA_VERSION = "1"
MAX_NOTE = 10_000  # characters; a note is a remark, not a document

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels (
    rollout_id TEXT PRIMARY KEY,
    label TEXT NOT NULL CHECK (label IN {LABELS!r}),
    note TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL,
    labelled_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id TEXT NOT NULL,
    label TEXT NOT NULL,
    note TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    labelled_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_rollout ON history (rollout_id);
"""


@dataclass(frozen=True, slots=True)
class Label:
    rollout_id: str
    label: str
    note: str
    reviewer: str
    labelled_at: str  # ISO 8601, UTC, milliseconds

    def as_json(self) -> dict[str, str]:
        return {
            "rollout_id": self.rollout_id,
            "label": self.label,
            "note": self.note,
            "reviewer": self.reviewer,
            "labelled_at": self.labelled_at,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), never opened behind our back.
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def _check_ours(conn: sqlite3.Connection, path: str) -> None:
    """Raise unless ``conn`` is a rollforge review database."""
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        app = None
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key = 'app'").fetchone()
            app = row[0] if row else None
    except sqlite3.DatabaseError as exc:
        raise RollforgeError(
            f"{path} is not a rollforge review database ({exc})",
            hint="pass the --db file that `rollforge review` wrote",
        ) from None
    if app != APP or not {"labels", "history"} <= tables:
        raise RollforgeError(
            f"{path} is an SQLite file but not a rollforge review database",
            hint="pass the --db file that `rollforge review` wrote",
        )


@contextlib.contextmanager
def _reader(path: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    """A connection to an existing review database (never creates one)."""
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise RollforgeError(
            f"no review database at {name}", hint="run `rollforge review ... --db FILE` first"
        )
    conn = _connect(name)
    try:
        _check_ours(conn, name)
        yield conn
    finally:
        conn.close()


class LabelStore:
    """Labels of one review database; safe to share between the server's worker threads (one
    connection per call: SQLite connections are cheap and this keeps threads from sharing cursors)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        fresh = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        conn = _connect(self.path)
        try:
            if not fresh:
                _check_ours(conn, self.path)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('app', ?), ('schema', ?)", (APP, SCHEMA_VERSION))
        except sqlite3.DatabaseError as exc:
            raise RollforgeError(f"cannot use {self.path} as a review database: {exc}") from None
        finally:
            conn.close()

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = _connect(self.path)
        try:
            yield conn
        finally:
            conn.close()

    def set_label(self, rollout_id: str, label: str, note: str, reviewer: str) -> Label:
        """Record a label: appended to the history and made the current one, in one transaction."""
        if label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)}, got {label!r}")
        record = Label(rollout_id, label, note[:MAX_NOTE], reviewer, _now())
        values = (record.rollout_id, record.label, record.note, record.reviewer, record.labelled_at)
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO history (rollout_id, label, note, reviewer, labelled_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    values,
                )
                conn.execute("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?)", values)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return record

    def current(self) -> dict[str, str]:
        """rollout_id -> current label."""
        with self._conn() as conn:
            return dict(conn.execute("SELECT rollout_id, label FROM labels"))

    def all(self) -> dict[str, Label]:
        """rollout_id -> current label record (with its note)."""
        with self._conn() as conn:
            return {row[0]: Label(*row) for row in conn.execute("SELECT * FROM labels")}

    def get(self, rollout_id: str) -> Label | None:
        with self._conn() as conn:
            row = conn.execute("SELECT * FROM labels WHERE rollout_id = ?", (rollout_id,)).fetchone()
        return Label(*row) if row else None

    def history(self, rollout_id: str) -> list[Label]:
        """Every label the rollout was given, oldest first."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT rollout_id, label, note, reviewer, labelled_at FROM history WHERE rollout_id = ? "
                "ORDER BY id",
                (rollout_id,),
            ).fetchall()
        return [Label(*row) for row in rows]


def iter_labels(db_path: str | os.PathLike[str]) -> Iterator[Label]:
    """Current labels, in the order they were given."""
    with _reader(db_path) as conn:
        for row in conn.execute("SELECT * FROM labels ORDER BY labelled_at, rollout_id"):
            yield Label(*row)


def load_labels(db_path: str | os.PathLike[str]) -> dict[str, str]:
    """rollout_id -> current label (accept, reject or flag) of every labelled rollout."""
    return {record.rollout_id: record.label for record in iter_labels(db_path)}


def rejected_ids(db_path: str | os.PathLike[str]) -> set[str]:
    """rollout_ids whose current label is ``reject`` (a later accept un-rejects)."""
    return {rid for rid, label in load_labels(db_path).items() if label == "reject"}


def export_labels(db_path: str | os.PathLike[str], output: str | os.PathLike[str] | IO[bytes]) -> int:
    """Write one JSON line per labelled rollout; a path is written atomically. Returns the count."""
    labels = list(iter_labels(db_path))  # read fully first: a bad DB must not leave a half-written file
    data = b"".join(orjson.dumps(record.as_json()) + b"\n" for record in labels)
    if isinstance(output, (str, os.PathLike)):
        with open_output(str(output)) as fh:  # atomic; or a pipe or device, written through
            fh.write(data)
    else:
        output.write(data)
        output.flush()
    return len(labels)
