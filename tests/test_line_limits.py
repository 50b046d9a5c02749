"""Issue 14: a line's length and nesting have fixed limits, the same in every command and process.

A line longer than ``--max-line-bytes`` is rejected (``line_too_long``) without being held in memory; a
line nested deeper than 512 levels is ``too_deep`` wherever it is decoded, at any stack depth a run reaches.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hostile import good_lines

from rollforge.cli.main import main
from rollforge.decode import LineDecoder
from rollforge.io.lines import Chunk, LineReader, LongLine, plan_chunks
from rollforge.io.read import read_rollouts
from rollforge.io.sources import Source
from rollforge.rollout import Reject, Rollout


def nested(depth: int) -> bytes:
    """A usable rollout line holding an unread field nested ``depth`` levels (the line itself is one)."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    row = {"responses_create_params": {"input": "Hi"}, "reward": 1.0, "junk": "@",
           "response": {"output": [{"type": "message", "role": "assistant", "content": "Hello."}]}}  # fmt: skip
    return json.dumps(row).replace('"@"', inner).encode()


def verdict(line: bytes, stack: int = 0) -> str:
    """What each way of decoding makes of the line, called ``stack`` frames deeper than usual."""
    if stack:
        return verdict(line, stack - 1)
    decoder = LineDecoder()
    full = decoder.parse(line, "f", 1)
    head = decoder.parse_head(line, "f", 1)
    reasons = {r.reason if isinstance(r, Reject) else "ok" for r in (full, head)}
    assert len(reasons) == 1, reasons
    return reasons.pop()


def test_nesting_limit_is_fixed() -> None:
    assert verdict(nested(512)) == "ok"
    assert verdict(nested(513)) == "too_deep"
    for stack in (
        0,
        150,
        300,
    ):  # msgspec's own limit moves with the stack (about 1000 frames in all): ours not
        assert verdict(nested(512), stack) == "ok"
        assert verdict(nested(900), stack) == "too_deep"
    brackets_in_text = json.loads(nested(2))
    brackets_in_text["response"]["output"][0]["content"] = "[" * 5000  # in a string: not nesting
    assert verdict(json.dumps(brackets_in_text).encode()) == "ok"


def lines_of(path: Path, limit: int, chunk: int | None = None) -> list[tuple[int, int]]:
    """(offset, length) of each line LineReader gives; a skipped long line has its length negated."""
    source = Source(str(path), path.stat().st_size, max_line_bytes=limit)
    chunks = plan_chunks([source], chunk) if chunk else [Chunk(source)]
    return [
        (offset, -line.length if isinstance(line, LongLine) else len(line))
        for c in chunks
        for _, offset, line in LineReader(c)
    ]


def test_long_lines_are_skipped_exactly(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    lines = [b"a" * 10, b"b" * 11, b"c" * 3, b"d" * 25, b"e" * 10]
    path.write_bytes(b"\n".join(lines))  # the last line has no newline
    got = lines_of(path, 10)
    assert got == [(0, 11), (11, -12), (23, 4), (27, -26), (53, 10)]
    for chunk in (5, 12, 30):  # byte ranges: a line belongs to the range it starts in, long or not
        assert lines_of(path, 10, chunk) == got


def test_a_long_line_is_never_held_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as fh:
        fh.write(b'{"a": "' + b"x" * (40 << 20))  # 40 MB and no newline, as a cut-off file has
    tracemalloc.start()
    try:
        records = list(read_rollouts([str(path)], max_line_bytes=1 << 20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(r.reason, r.line) for r in records if isinstance(r, Reject)] == [("line_too_long", 1)]
    assert peak < 8 << 20, f"peak {peak >> 20} MB for a 40 MB line over a 1 MB limit"


def test_max_line_bytes_in_every_command(
    tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = good_lines(examples_dir, 6)
    limit = max(len(line) for line in good) + 1
    long = good[0].replace('"reward":', '"padding": "' + "p" * limit + '", "reward":')
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([*good[:3], long, *good[3:]]) + "\n")

    def run(*argv: str) -> dict[str, Any]:
        assert main([*argv, "--max-line-bytes", str(limit)]) == 0
        return json.loads(capsys.readouterr().out)

    summaries = [
        run("inspect", str(path), "--json", "--workers", "1"),
        run("sft", str(path), "-o", str(tmp_path / "s.jsonl"), "--json", "--workers", "2"),
        run("dpo", str(path), "-o", str(tmp_path / "d.jsonl"), "--json", "--allow-empty"),
        run("sample", str(path), "-o", str(tmp_path / "r.jsonl"), "--json"),
        run("build", str(path), "-o", str(tmp_path / "rel"), "--json", "--workers", "1")["accounting"],
        run("report", str(path), "-o", str(tmp_path / "r.html"), "--json")["accounting"],
    ]
    for summary in summaries:
        rejected = summary["rejected"]
        reasons = [r["reason"] for r in rejected] if isinstance(rejected, list) else rejected
        assert summary["lines"] == 7 and summary["rollouts"] == 6
        assert reasons == ["line_too_long"] or reasons == {"line_too_long": 1}
    with pytest.raises(SystemExit):  # argparse: a usage error naming the flag
        main(["inspect", str(path), "--max-line-bytes", "lots"])
    assert "--max-line-bytes: not a size in bytes" in capsys.readouterr().err


def test_default_limit_keeps_real_lines(examples_dir: Path) -> None:
    records = list(read_rollouts([str(examples_dir)]))
    assert not any(isinstance(r, Reject) and r.reason == "line_too_long" for r in records)
    assert sum(isinstance(r, Rollout) for r in records) == 480
