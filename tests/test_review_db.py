"""The labels store: current label + history, the filters' API, export, refusal of foreign files, and
concurrent writers."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import orjson
import pytest

from rollforge.errors import RollforgeError
from rollforge.labels import LabelStore, export_labels, load_labels, rejected_ids


def test_relabelling_keeps_history_and_one_current_row(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "r.sqlite")
    store.set_label("a", "reject", "wrong answer", "alice")
    store.set_label("a", "accept", "on second look fine", "bob")
    store.set_label("b", "flag", "", "alice")
    assert store.current() == {"a": "accept", "b": "flag"}
    assert [(h.label, h.reviewer, h.note) for h in store.history("a")] == [
        ("reject", "alice", "wrong answer"),
        ("accept", "bob", "on second look fine"),
    ]
    record = store.get("a")
    assert record is not None and record.labelled_at.endswith("Z") and record.reviewer == "bob"
    with pytest.raises(ValueError, match="label must be one of"):
        store.set_label("a", "maybe", "", "alice")


def test_wal_mode(tmp_path: Path) -> None:
    LabelStore(tmp_path / "r.sqlite")
    with sqlite3.connect(tmp_path / "r.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_filters_api_reads_current_labels(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    store = LabelStore(db)
    store.set_label("x", "reject", "", "r")
    store.set_label("y", "reject", "", "r")
    store.set_label("y", "accept", "", "r")  # un-rejected
    store.set_label("z", "flag", "", "r")
    assert rejected_ids(db) == {"x"}
    assert load_labels(str(db)) == {"x": "reject", "y": "accept", "z": "flag"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no review database at"),
        (b'{"responses_create_params": {}}\n', "is not a rollforge review database"),
        ("other-sqlite", "is an SQLite file but not a rollforge review database"),
    ],
)
def test_not_a_review_db_is_refused_clearly(
    tmp_path: Path, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / "labels.db"
    if content == "other-sqlite":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE labels (x)")
        conn.close()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    for read in (rejected_ids, load_labels):
        with pytest.raises(RollforgeError, match=message):
            read(path)
    if content is not None:  # the server must not add its tables to someone else's file either
        before = path.read_bytes()
        with pytest.raises(RollforgeError, match="not a rollforge review database"):
            LabelStore(path)
        assert path.read_bytes() == before


def test_export_writes_one_line_per_labelled_rollout(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    store = LabelStore(db)
    store.set_label("a", "accept", "good", "alice")
    store.set_label("b", "reject", "<b>bad</b>\nreally", "bob")
    store.set_label("a", "flag", "hmm", "alice")
    out = tmp_path / "out" / "labels.jsonl"
    assert export_labels(db, out) == 2
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(r["rollout_id"], r["label"], r["note"], r["reviewer"]) for r in rows] == [
        ("b", "reject", "<b>bad</b>\nreally", "bob"),
        ("a", "flag", "hmm", "alice"),
    ]
    assert set(rows[0]) == {"rollout_id", "label", "note", "reviewer", "labelled_at"}
    assert not list(out.parent.glob("*.partial"))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    LabelStore(db)
    errors: list[BaseException] = []

    def label(worker: int) -> None:
        store = LabelStore(db)  # as a second server process would
        try:
            for i in range(40):
                store.set_label(f"w{worker}-{i}", "accept", f"note {i}", f"reviewer{worker}")
                store.set_label("shared", ("accept", "reject", "flag")[worker % 3], "", f"reviewer{worker}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=label, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    labels = load_labels(db)
    assert len(labels) == 6 * 40 + 1
    assert len(LabelStore(db).history("shared")) == 6 * 40
