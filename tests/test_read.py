"""The reader: paths, directories, globs, stdin, compression, companions, byte-range chunks, identity,
flat memory, and `rollforge inspect`."""

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
from rollforge.errors import RollforgeError
from rollforge.example import write_example
from rollforge.io.lines import LineReader, plan_chunks
from rollforge.io.read import read_rollouts
from rollforge.io.sources import Source, discover
from rollforge.rollout import Reject, Rollout


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


def test_prompt_and_rollout_ids(tmp_path: Path) -> None:
    a = row(1, "first", _ng_task_index=5)
    b = row(1, "second", _ng_task_index=99)  # same prompt in another run: other task index
    typed = json.dumps({"responses_create_params": {"input": [{"type": "message", "role": "user", "content": "task 1"}]},
                        "response": {"output": [{"type": "message", "role": "assistant", "content": "x"}]}, "reward": 0}).encode()  # fmt: skip
    (tmp_path / "one.jsonl").write_bytes(a + b"\n" + row(2) + b"\n")
    (tmp_path / "two.jsonl").write_bytes(b"\n\n" + b + b"\n" + a + b"   \n" + typed + b"\n")
    one, two = records([str(tmp_path / "one.jsonl")]), records([str(tmp_path / "two.jsonl")])
    assert one[0].prompt_id == two[0].prompt_id == two[2].prompt_id  # files, order, task index, typed or not
    assert one[1].prompt_id != one[0].prompt_id
    assert one[0].rollout_id == two[1].rollout_id  # the same line anywhere, whitespace aside
    assert one[0].rollout_id != two[0].rollout_id
    tools = json.loads(a)
    tools["responses_create_params"]["tools"] = [{"type": "function", "name": "f"}]
    (tmp_path / "t.jsonl").write_bytes(json.dumps(tools).encode())
    assert records([str(tmp_path / "t.jsonl")])[0].prompt_id != one[0].prompt_id


def peak_rss_mb(path: Path) -> float:
    code = ("import resource, sys\nfrom rollforge.io.read import read_rollouts\n"
            "for _ in read_rollouts([sys.argv[1]]): pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout)


def test_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    write_example(tmp_path / "ex", rollouts=1200, bad_lines=False)
    one = (tmp_path / "ex" / "tool_calling.jsonl").read_bytes()
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small.write_bytes(one * 3)
    large.write_bytes(one * 12)  # 4x the lines
    assert large.stat().st_size > 20 * 2**20
    grew = peak_rss_mb(large) - peak_rss_mb(small)
    assert grew < 15, f"peak memory grew {grew:.1f} MB for 4x the input"


def test_inspect_json_accounts_for_every_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # one row per line in the rich tables
    path = tmp_path / "a.jsonl"
    path.write_bytes(
        b"\n".join([row(1, reward=0.0), row(1, "b", reward=1.0), row(2, reward=0.5), b"{bad"]) + b"\n"
    )
    assert main(["inspect", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["lines"], s["rollouts"], s["prompts"]) == (4, 3, 2)
    assert s["rejected"] == [{"file": str(path), "line": 4, "reason": "invalid_json"}]
    assert s["reward"]["min"] == 0.0 and s["reward"]["max"] == 1.0 and s["reward"]["mean"] == 0.5
    assert s["prompts_with_reward_spread"] == 1 and s["lines"] == s["rollouts"] + len(s["rejected"])
    assert main(["inspect", str(path)]) == 0
    table = capsys.readouterr().out
    assert "rejected lines" in table and "invalid_json" in table and f"{path}:4" in table


def test_inspect_warns_when_no_dpo_pairs_are_possible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(row(1) + b"\n" + row(2) + b"\n")
    main(["inspect", str(path), "--json"])
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert "no prompt has two rollouts with different rewards: no DPO pairs possible" in warnings
    path.write_bytes(row(1, reward=0.0) + b"\n" + row(1, "b", reward=1.0) + b"\n")
    main(["inspect", str(path), "--json"])
    assert not any("DPO" in w for w in json.loads(capsys.readouterr().out)["warnings"])


def test_the_bundled_example_is_the_generator_output(examples_dir: Path, tmp_path: Path) -> None:
    write_example(tmp_path)
    for path in sorted(examples_dir.iterdir()):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
