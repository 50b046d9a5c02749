"""The reader: paths, directories, globs, stdin, compression, companions, byte-range chunks and flat memory.
(Identities are tested in test_identity.py, `rollforge inspect` in test_inspect.py.)"""

from __future__ import annotations

import gzip
import io
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zstandard

from rollforge.cli.main import main
from rollforge.decode import LineDecoder
from rollforge.errors import RollforgeError
from rollforge.example import write_example
from rollforge.io.lines import Chunk, LineReader, plan_chunks
from rollforge.io.read import Materialized, read_chunk, read_rollouts
from rollforge.io.sources import Source, discover
from rollforge.pipeline import take_inventory
from rollforge.rollout import Head, Reject, Rollout


def row(task: int, text: str = "a", reward: float = 1.0, **extra: Any) -> bytes:
    data = {"responses_create_params": {"input": f"task {task}"},
            "response": {"output": [{"type": "message", "role": "assistant", "content": text}]}, "reward": reward, **extra}  # fmt: skip
    return json.dumps(data).encode()


def records(paths: list[str]) -> list[Rollout | Reject]:
    return list(read_rollouts(paths))


def test_blank_lines_are_not_lines_but_numbering_is_physical(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(row(1) + b"\n\n   \n" + b"oops\n" + row(2) + b"\n")
    got = records([str(path)])
    assert [type(r).__name__ for r in got] == ["Rollout", "Reject", "Rollout"]
    assert [r.line for r in got] == [1, 4, 5]


def test_directories_globs_and_compression(tmp_path: Path) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "a.jsonl").write_bytes(row(1) + b"\n")
    (tmp_path / "deep" / "b.jsonl.gz").write_bytes(gzip.compress(row(2) + b"\n"))
    (tmp_path / "deep" / "er" / "c.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress(row(3) + b"\n")
    )
    (tmp_path / "notes.txt").write_text("not a rollout")
    assert len(records([str(tmp_path)])) == 3
    assert len(records([str(tmp_path / "**" / "*.jsonl*")])) == 3
    assert len(records([str(tmp_path / "deep" / "b.jsonl.gz")])) == 1


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(row(1) + b"\n" + row(2) + b"\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    got = records(["-"])
    assert len(got) == 2 and got[0].file == "-"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: str(p / "missing.jsonl"), "no such file or directory"),
        (lambda p: str(p), "no rollouts files under"),
        (lambda p: str(p / "*.nothing"), "no files match"),
    ],
)
def test_clear_errors(tmp_path: Path, make: Any, message: str) -> None:
    with pytest.raises(RollforgeError, match=message):
        records([make(tmp_path)])


def test_companions_recognised_and_materialized_inputs_joined(tmp_path: Path) -> None:
    (tmp_path / "run.jsonl").write_bytes(
        row(1, _ng_task_index=0, _ng_rollout_index=0) + b"\n"
        + row(2, _ng_task_index=1, _ng_rollout_index=0, metadata={"task_type": "kept"}) + b"\n"
    )  # fmt: skip
    planned = [{"_ng_task_index": 0, "_ng_rollout_index": 0, "metadata": {"task_type": "restored"}, "task_id": "t0"},
               {"_ng_task_index": 1, "_ng_rollout_index": 0, "metadata": {"task_type": "never used"}}]  # fmt: skip
    (tmp_path / "run_materialized_inputs.jsonl").write_text("\n".join(json.dumps(p) for p in planned))
    (tmp_path / "run_failures.jsonl").write_text('{"error": "x"}\n{"error": "y"}\n')
    (tmp_path / "run_aggregate_metrics.json").write_text("{}")
    discovery = discover([str(tmp_path)])
    assert [s.path for s in discovery.sources] == [str(tmp_path / "run.jsonl")]
    assert sorted(c.kind for c in discovery.companions) == [
        "aggregate_metrics",
        "failures",
        "materialized_inputs",
    ]
    for paths in ([str(tmp_path)], [str(tmp_path / "run.jsonl")]):  # also when the file is named on its own
        got = records(paths)
        assert [r.task_type for r in got] == ["restored", "kept"]  # present fields are never overwritten
        assert got[0].fields["task_id"] == "t0"


def test_chunks_cover_every_line_once(tmp_path: Path) -> None:
    rng = random.Random(0)
    lines = [row(i, "x" * rng.randint(0, 300)) for i in range(300)]
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n\n")
    source = Source(str(path), path.stat().st_size)
    for size in (1, 7, 100, 1000, 4096, rng.randint(50, 5000), source.size, 10**9):
        seen = []
        base = 0
        for chunk in plan_chunks([source], size):
            reader = LineReader(chunk)
            seen += [(base + i + 1, line.rstrip(b"\n")) for i, _, line in reader]
            base += reader.lines_seen
        assert [n for n, _ in seen] == list(range(1, 301)), size
        assert [line for _, line in seen] == lines, size


def peak_rss_mb(path: Path) -> tuple[int, float]:
    """(records read, peak resident MB) of reading a file in a fresh process."""
    code = ("import resource, sys\nfrom rollforge.io.read import read_rollouts\n"
            "n = sum(1 for _ in read_rollouts([sys.argv[1]]))\n"
            "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    n, peak = out.stdout.split()
    return int(n), float(peak)


def test_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    """~60 MB and ~120 MB of rollouts: peak memory is the same within a few MB (one line at a time). Each is
    read in its own process, so the interpreter and imports cancel out."""
    write_example(tmp_path / "ex", rollouts=1200, bad_lines=False)
    block = (tmp_path / "ex" / "tool_calling.jsonl").read_bytes()
    sizes = {}
    for mb in (60, 120):
        path = tmp_path / f"{mb}.jsonl"
        with path.open("wb") as fh:
            while fh.tell() < mb << 20:
                fh.write(block)
        sizes[mb] = peak_rss_mb(path)
    (small_n, small_peak), (large_n, large_peak) = sizes[60], sizes[120]
    assert large_n >= 2 * small_n - 400 and small_n > 5000  # both read to the end
    assert large_peak - small_peak < 20, f"peak memory grew {large_peak - small_peak:.1f} MB for 2x the input"


# --- more of the reader -----------------------------------------------------------------------------------------

MIXED = [row(1), b"", row(2, "b"), b"   ", b"<PLACEHOLDER ROW>", row(3, "c"), b"\t", row(4, "d")]


def summary(got: list[Rollout | Reject]) -> list[tuple[int, str]]:
    return [(r.line, r.reason if isinstance(r, Reject) else r.rollout_id) for r in got]


@pytest.mark.parametrize(
    ("suffix", "pack"),
    [(".jsonl", bytes), (".jsonl.gz", gzip.compress), (".jsonl.zst", zstandard.ZstdCompressor().compress)],
)
def test_every_format_numbers_physical_lines(tmp_path: Path, suffix: str, pack: Any) -> None:
    path = tmp_path / f"run{suffix}"
    path.write_bytes(pack(b"\n".join(MIXED)))  # no newline after the last line
    got = records([str(path)])
    assert summary(got) == [(1, got[0].rollout_id), (3, got[1].rollout_id), (5, "invalid_json"),
                            (6, got[3].rollout_id), (8, got[4].rollout_id)]  # fmt: skip
    assert {r.file for r in got} == {str(path)}
    plain = tmp_path / "plain" / "run.jsonl"
    plain.parent.mkdir(exist_ok=True)
    plain.write_bytes(b"\n".join(MIXED))
    assert summary(got) == summary(records([str(plain)]))  # same lines, same ids, whatever the compression


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "win.jsonl"
    path.write_bytes(b"\r\n".join(MIXED) + b"\r\n")
    assert summary(records([str(path)])) == summary(records([write(tmp_path / "unix.jsonl", MIXED)]))


def write(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


class _Stdin:
    """What sys.stdin looks like to the reader: a text stream with a binary .buffer."""

    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_stdin_with_a_bytes_buffer_and_files_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(b"\n".join(MIXED)))
    path = write(tmp_path / "a.jsonl", [row(9)])
    got = records([path, "-"])
    assert [(r.file, r.line) for r in got] == [(path, 1), ("-", 1), ("-", 3), ("-", 5), ("-", 6), ("-", 8)]
    assert not sys.stdin.buffer.closed  # the reader never closes stdin


def test_a_directory_is_searched_recursively_in_a_stable_order(tmp_path: Path) -> None:
    for name in ["b.jsonl", "a/z.jsonl.gz", "a/b/c.jsonl.zst", "a/notes.txt", "a/data.json", "c.jsonl.bak"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = row(len(name)) + b"\n"
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else
                         zstandard.ZstdCompressor().compress(data) if name.endswith(".zst") else data)  # fmt: skip
    found = [s.path for s in discover([str(tmp_path)]).sources]
    assert found == [str(tmp_path / n) for n in ["a/b/c.jsonl.zst", "a/z.jsonl.gz", "b.jsonl"]]
    assert [s.path for s in discover([str(tmp_path / "*.jsonl")]).sources] == [str(tmp_path / "b.jsonl")]
    # a glob is the user's choice: it reads what it matches (a directory search skips c.jsonl.bak)
    assert len(discover([str(tmp_path / "*.jsonl*")]).sources) == 2
    recursive = discover([str(tmp_path / "**" / "*.jsonl*")]).sources
    assert sorted(s.path for s in recursive) == sorted([*found, str(tmp_path / "c.jsonl.bak")])
    # a path given twice (itself and through its directory) is read once
    assert len(records([str(tmp_path), str(tmp_path / "b.jsonl"), str(tmp_path / "*.jsonl")])) == 3


def test_companions_are_never_read_as_rollouts(tmp_path: Path) -> None:
    write(tmp_path / "run.jsonl", [row(1, _ng_task_index=0, _ng_rollout_index=0)])
    write(tmp_path / "run_failures.jsonl", [b'{"error": "a"}', b"", b'{"error": "b"}', b'{"error": "c"}'])
    (tmp_path / "run_materialized_inputs.jsonl.gz").write_bytes(
        gzip.compress(json.dumps({"_ng_task_index": 0, "_ng_rollout_index": 0, "task_id": "t"}).encode())
    )
    (tmp_path / "run_aggregate_metrics.json").write_text('{"mean/reward": 1}')
    for paths in (
        [str(tmp_path)],
        [str(tmp_path / "*")],
        [str(tmp_path / "*.jsonl*")],
        [str(tmp_path / "run.jsonl")],
    ):
        found = discover(paths)
        assert [s.path for s in found.sources] == [str(tmp_path / "run.jsonl")], paths
        assert found.sources[0].materialized == str(tmp_path / "run_materialized_inputs.jsonl.gz"), paths
        got = records(paths)
        assert len(got) == 1 and isinstance(got[0], Rollout) and got[0].fields["task_id"] == "t"
    kinds = {c.kind for c in discover([str(tmp_path)]).companions}
    assert kinds == {"failures", "materialized_inputs", "aggregate_metrics"}
    inventory = take_inventory([str(tmp_path)])
    assert inventory["lines"] == 1
    assert {c["kind"]: c["lines"] for c in inventory["companions"]}["failures"] == 3  # counted, not read


def test_only_companions_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "run_failures.jsonl", [b"{}"])
    with pytest.raises(RollforgeError, match="only companion files"):
        discover([str(tmp_path / "run_failures.jsonl")])
    with pytest.raises(RollforgeError, match="no input given"):
        discover([])


def test_errors_are_one_clean_line_on_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    for path, message in [
        (tmp_path / "missing.jsonl", f"no such file or directory: {tmp_path / 'missing.jsonl'}"),
        (tmp_path / "empty", f"no rollouts files under {tmp_path / 'empty'}"),
        (tmp_path / "*.nothing", f"no files match {str(tmp_path / '*.nothing')!r}"),
    ]:
        assert main(["inspect", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"rollforge: error: {message}") and err.count("\n") == 1, err


def test_materialized_inputs_restore_only_missing_fields(tmp_path: Path) -> None:
    planned = tmp_path / "run_materialized_inputs.jsonl"
    write(planned, [
        json.dumps({"_ng_task_index": 0, "_ng_rollout_index": 1, "task_id": "t0", "metadata": {"task_type": "planned"},
                    "expected_answer": "42", "responses_create_params": {"input": "planned prompt"}}).encode(),
        b"{broken",
        json.dumps({"_ng_task_index": 1, "_ng_rollout_index": 0, "task_id": "t1"}).encode(),
    ])  # fmt: skip
    index = Materialized(str(planned))
    assert index.restore(0, 1)["task_id"] == "t0" and index.restore(0, 0) is None and index.restore(1, 0)
    rollout_rows = [
        row(0, _ng_task_index=0, _ng_rollout_index=1, metadata={"task_type": "mine"}),  # restores the rest
        row(1, _ng_task_index=1, _ng_rollout_index=0, task_id="own"),  # present: never overwritten
        row(2, _ng_task_index=5, _ng_rollout_index=5),  # not planned: nothing to restore
        row(3),  # no indices
    ]
    got = records([write(tmp_path / "run.jsonl", rollout_rows)])
    assert [r.fields.get("task_id") for r in got] == ["t0", "own", None, None]
    assert got[0].task_type == "mine" and got[0].fields["expected_answer"] == "42"
    assert got[0].messages[0]["content"] == "task 0"  # the conversation is the rollout's own
    head = LineDecoder().parse_head(rollout_rows[0], "run.jsonl", 1, index.restore)
    assert isinstance(head, Head) and head.fields["task_id"] == "t0" and head.task_type == "mine"


def test_reading_with_companions_imports_no_numpy(tmp_path: Path) -> None:
    """Workers read rollouts and join companions without numpy (it would add about 13 MB to each worker);
    planned rows in shuffled order are still found by their indices."""
    keys = [(t, r) for t in range(40) for r in range(3)]
    random.Random(7).shuffle(keys)
    write(tmp_path / "run_materialized_inputs.jsonl", [
        json.dumps({"_ng_task_index": t, "_ng_rollout_index": r, "task_id": f"t{t}.{r}"}).encode() for t, r in keys
    ])  # fmt: skip
    write(
        tmp_path / "run.jsonl",
        [row(i, _ng_task_index=t, _ng_rollout_index=r) for i, (t, r) in enumerate(keys)],
    )
    script = (
        "import sys; from rollforge.io.read import read_rollouts; "
        f"ids = [r.fields.get('task_id') for r in read_rollouts([{str(tmp_path)!r}])]; "
        "print(len(ids), len(set(ids)), None in ids, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["120", "120", "False", "False"]


def test_random_chunks_cover_every_line_once(tmp_path: Path) -> None:
    """Byte ranges of any size (most split lines) give every non-blank line exactly once, with its physical
    line number once chunk counts are added up, as the engine does."""
    rng = random.Random(1234)
    for trial in range(6):
        lines = [rng.choice([row(i, "x" * rng.randint(0, 400)), b"", b"  ", b"{bad " + b"y" * rng.randint(0, 50)])
                 for i in range(rng.randint(1, 200))]  # fmt: skip
        end = rng.choice([b"\n", b"", b"\n\n"])
        path = tmp_path / f"{trial}.jsonl"
        path.write_bytes(b"\n".join(lines) + end)
        source = Source(str(path), path.stat().st_size)
        expected = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
        for size in [rng.randint(1, source.size + 10) for _ in range(25)] + [
            1,
            2,
            source.size - 1,
            source.size,
        ]:
            got, base = [], 0
            for chunk in plan_chunks([source], max(1, size)):
                reader = LineReader(chunk)
                got += [(base + i + 1, line.rstrip(b"\n")) for i, _, line in reader]
                base += reader.lines_seen
            assert got == expected, (trial, size)


def test_chunked_records_equal_whole_file_records(tmp_path: Path) -> None:
    lines = [row(i, "z" * (i * 37 % 500), reward=i % 3) if i % 7 else b"not json" for i in range(120)]
    path = Path(write(tmp_path / "a.jsonl", lines))
    source = Source(str(path), path.stat().st_size)
    whole = summary(list(read_chunk(Chunk(source), LineDecoder())))
    for size in (97, 1000, 4096, 20000):
        got, base = [], 0
        for chunk in plan_chunks([source], size):
            reader = LineReader(chunk)
            got += [(base + n, key) for n, key in summary(list(read_chunk(chunk, LineDecoder(), reader)))]
            base += reader.lines_seen
        assert got == whole, size


def test_a_truncated_zstd_stream_is_an_unreadable_file(tmp_path: Path) -> None:
    packed = zstandard.ZstdCompressor().compress(b"\n".join(row(i, "w" * 200) for i in range(300)) + b"\n")
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(packed[: len(packed) // 2])
    got = records([str(path)])
    assert isinstance(got[-1], Reject) and got[-1].reason == "unreadable_file"
    assert all(isinstance(r, Rollout) for r in got[:-1])
