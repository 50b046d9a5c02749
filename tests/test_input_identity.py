"""Issue 14: a file named twice (another path to it, a link) is read once and the summary says so; standard
input is read, counted and hashed like a file."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollforge.cli.main import main


@pytest.fixture
def named_twice(tmp_path: Path, examples_dir: Path) -> tuple[str, list[str]]:
    """math.jsonl, and the same file as x/../math.jsonl, a hard link and a symlink."""
    path = tmp_path / "math.jsonl"
    path.write_bytes((examples_dir / "math_reasoning.jsonl").read_bytes())
    (tmp_path / "x").mkdir()
    os.link(path, tmp_path / "hard.jsonl")
    (tmp_path / "soft.jsonl").symlink_to(path)
    return str(path), [str(tmp_path / "x" / ".." / "math.jsonl"), str(tmp_path / "hard.jsonl"),
                       str(tmp_path / "soft.jsonl")]  # fmt: skip


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_a_file_named_twice_is_read_once(
    named_twice: tuple[str, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, others = named_twice
    paths = [first, *others]
    expected = [{"path": other, "same_as": first} for other in others]
    inspect = run_json(capsys, ["inspect", *paths, "--json"])
    assert inspect["lines"] == 160 and inspect["same_file"] == expected
    sft = run_json(capsys, ["sft", *paths, "-o", str(tmp_path / "sft.jsonl"), "--json"])
    assert sft["lines"] == 160 and sft["same_file"] == expected
    dpo = run_json(capsys, ["dpo", *paths, "-o", str(tmp_path / "dpo.jsonl"), "--json"])
    assert dpo["lines"] == 160 and dpo["same_file"] == expected
    report = run_json(capsys, ["report", *paths, "-o", str(tmp_path / "r.html"), "--json"])
    assert report["accounting"]["lines"] == 160 and report["accounting"]["same_file"] == expected
    built = run_json(capsys, ["build", *paths, "-o", str(tmp_path / "rel"), "--json"])
    manifest = json.loads(Path(built["manifest"]).read_bytes())
    assert [entry["path"] for entry in manifest["inputs"]] == [first]  # released once
    assert manifest["accounting"]["lines"] == 160 and manifest["same_file"] == expected
    assert main(["sft", *paths, "-o", str(tmp_path / "sft.jsonl")]) == 0  # the table says it too
    assert f"note: {others[0]} is the same file as {first}: read once" in capsys.readouterr().err


def test_a_build_from_stdin_records_what_it_read(examples_dir: Path, tmp_path: Path) -> None:
    data = (examples_dir / "math_reasoning.jsonl").read_bytes()
    done = subprocess.run([sys.executable, "-m", "rollforge.cli.main", "build", "-", "-o", str(tmp_path), "--json"],
                          input=data, capture_output=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads(Path(json.loads(done.stdout)["manifest"]).read_bytes())
    assert manifest["inputs"] == [
        {"path": "-", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "lines": 160}
    ]


def test_stdin_beside_files_is_read_with_several_workers(examples_dir: Path, tmp_path: Path) -> None:
    """A worker process has no stdin: the run reads it itself while the workers read the files."""
    data = (examples_dir / "math_reasoning.jsonl").read_bytes()
    argv = [sys.executable, "-m", "rollforge.cli.main", "sft", "-", str(examples_dir / "tool_calling.jsonl"),
            "-o", str(tmp_path / "sft.jsonl"), "--workers", "2", "--json"]  # fmt: skip
    done = subprocess.run(argv, input=data, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["lines"] == 320
