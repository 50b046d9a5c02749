"""Issue 14: `-o` never destroys what it points at.

An output that is one of the inputs (any path, any link) is refused before anything is read; a pipe or a
device is written through, never replaced by a regular file; `-o -` is standard output for every command
that writes rows, with the summary on stderr.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rollforge.cli.main import main

ROW_COMMANDS = ("sft", "dpo", "sample")


@pytest.fixture
def rollouts(tmp_path: Path, examples_dir: Path) -> Path:
    """40 rollouts, 10 prompts with 4 rollouts each (so that DPO pairs some)."""
    lines = (examples_dir / "math_reasoning.jsonl").read_text().splitlines()
    prompts = sorted({json.loads(line)["responses_create_params"]["input"][-1]["content"] for line in lines})[
        :10
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(line + "\n" for line in lines if any(p in line for p in prompts)))
    return path


def sft_rows(rollouts: Path, tmp_path: Path) -> int:
    assert main(["sft", str(rollouts), "-o", str(tmp_path / "regular.jsonl"), "-q"]) == 0
    rows = len((tmp_path / "regular.jsonl").read_text().splitlines())
    (tmp_path / "regular.jsonl").unlink()
    return rows


def rollforge(*argv: str, stdout: int | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "rollforge.cli.main", *argv], capture_output=stdout is None,
                          stdout=stdout, stderr=subprocess.PIPE if stdout is not None else None, timeout=120)  # fmt: skip


@pytest.mark.parametrize("command", [*ROW_COMMANDS, "report"])
def test_an_output_that_is_an_input_is_refused(
    command: str, rollouts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = rollouts.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(rollouts)
    os.link(rollouts, tmp_path / "hard.jsonl")
    for output in (
        rollouts,
        tmp_path / "link.jsonl",
        tmp_path / "hard.jsonl",
        tmp_path / "new" / ".." / "in.jsonl",
    ):
        assert main([command, str(rollouts), "-o", str(output)]) == 1, output
        error = capsys.readouterr().err
        assert "is the input" in error and "writing it would destroy" in error and "Traceback" not in error
        assert rollouts.read_bytes() == before
    assert main([command, str(tmp_path / "link.jsonl"), "-o", str(rollouts)]) == 1  # read through a link
    assert rollouts.read_bytes() == before


def test_stdout_that_is_an_input_is_refused(rollouts: Path) -> None:
    before = rollouts.read_bytes()
    with open(rollouts, "ab") as appended:  # `rollforge sft in.jsonl -o - >> in.jsonl`
        done = rollforge("sft", str(rollouts), "-o", "-", stdout=appended.fileno())
    assert done.returncode == 1 and b"is the input" in done.stderr
    assert rollouts.read_bytes() == before


def test_a_named_pipe_is_written_through(rollouts: Path, tmp_path: Path) -> None:
    expected = sft_rows(rollouts, tmp_path)
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert main(["sft", str(rollouts), "-o", str(fifo), "-q"]) == 0
    reader.join(timeout=10)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the pipe is still a pipe"
    rows = [json.loads(line) for line in received[0].splitlines()]
    assert len(rows) == expected and all("messages" in row for row in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "rows.fifo"]  # no debris


def test_a_device_is_written_through(rollouts: Path) -> None:
    from rollforge.io.target import work_directory, written_through  # before touching /dev/null at all

    assert written_through("/dev/null") and written_through("/dev/stdout")
    assert not work_directory("/dev/null").startswith("/dev")  # scratch files never go into /dev
    for command in (*ROW_COMMANDS, "report"):
        assert main([command, str(rollouts), "-o", "/dev/null", "-q"] if command != "report" else
                    [command, str(rollouts), "-o", "/dev/null"]) == 0  # fmt: skip
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.parametrize("command", ROW_COMMANDS)
def test_dash_is_standard_output(command: str, rollouts: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "rollforge.cli.main", command, str(rollouts), "-o", "-", "--json"],
                          capture_output=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    summary = json.loads(done.stderr)  # the accounting goes to stderr: stdout holds the rows only
    assert len(rows) == summary["written"] > 0
    assert not (tmp_path / "-").exists()
    plain = rollforge(command, str(rollouts), "-o", "-")
    assert plain.returncode == 0 and len(plain.stdout.splitlines()) == summary["written"]
    assert b"standard output" in plain.stderr


def test_dev_stdout_through_a_pipe(rollouts: Path, tmp_path: Path) -> None:
    done = rollforge("sft", str(rollouts), "-o", "/dev/stdout", "-q")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == sft_rows(rollouts, tmp_path)
