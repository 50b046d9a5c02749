"""Issue 14: runs at the same time never collide. Two builds into one directory make two versions; a second
`collect` on an output another one is writing is refused with one clear line. Real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_collect_fakes import FakeServer, Reply, completion, task_of, task_row, write_jsonl

from rollforge.cli.main import main


@pytest.mark.slow
def test_two_builds_at_once_make_two_versions(examples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "releases"
    argv = [sys.executable, "-m", "rollforge.cli.main", "build", str(examples_dir), "-o", str(out), "--json",
            "--workers", "1"]  # fmt: skip
    builds = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    done = [build.communicate(timeout=300) for build in builds]
    assert [build.returncode for build in builds] == [0, 0], [err.decode()[-500:] for _, err in done]
    names = sorted(Path(json.loads(stdout)["release"]).name for stdout, _ in done)
    assert names == ["v1", "v2"]
    assert sorted(p.name for p in out.iterdir()) == ["v1", "v2"]  # no reservation or partial left
    first, second = (json.loads((out / n / "manifest.json").read_bytes()) for n in names)
    assert first["accounting"] == second["accounting"]


def test_an_explicit_version_being_built_is_refused(examples_dir: Path, tmp_path: Path) -> None:
    from rollforge.build.versions import reserved_version
    from rollforge.errors import RollforgeError

    with reserved_version(tmp_path, "v1-math"):  # as a build running now holds it
        with (
            pytest.raises(RollforgeError, match="being built by another run"),
            reserved_version(tmp_path, "v1-math"),
        ):
            pass  # pragma: no cover
        with reserved_version(tmp_path) as version:
            assert version == "v1"
    assert list(tmp_path.iterdir()) == []


def test_a_second_collect_on_one_output_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = write_jsonl(
        tmp_path / "tasks.jsonl", [task_row(i, f"What is {i}+{i}?", str(2 * i)) for i in range(8)]
    )
    out = tmp_path / "out.jsonl"

    def slow(path: str, body: Any) -> Reply:
        time.sleep(0.05)
        task = task_of(body)
        return Reply(body=completion(f"The answer is {2 * task}."))

    with FakeServer(slow) as server:
        argv = ["collect", str(tasks), "-o", str(out), "--base-url", f"{server.url}/v1", "--model", "m",
                "--verifier", "exact", "--num-repeats", "10", "--concurrency", "2", "-q"]  # fmt: skip
        first = subprocess.Popen([sys.executable, "-m", "rollforge.cli.main", *argv], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out.exists() and out.stat().st_size):
            time.sleep(0.02)
        assert first.poll() is None, "the first run ended before the second could start"
        assert main([*argv, "--resume"]) == 1
        error = capsys.readouterr().err
        assert "is being written by another `rollforge collect` run" in error and "Traceback" not in error
        assert first.wait(timeout=120) == 0, first.stderr.read() if first.stderr else ""
    keys = [
        (row["_ng_task_index"], row["_ng_rollout_index"])
        for row in map(json.loads, out.read_text().splitlines())
    ]
    assert len(keys) == len(set(keys)) == 80  # every planned row once
    assert not (tmp_path / ".out.jsonl.lock").exists()
