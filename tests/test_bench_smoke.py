"""`make bench`'s harness runs end to end on a tiny corpus and prints the table RESULTS.md is made of."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["rollouts", "command", "who", "workers", "wall s", "MB/s", "rollouts/s", "peak PSS tree MB",
           "largest process RSS MB", "RSS sum MB", "rows out", "tutorial time / this", "1 worker time / 2"]  # fmt: skip


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_bench_quick_prints_the_table(tmp_path: Path) -> None:
    quick = ["--quick", "--sizes", "500", "--commands", "sft", "--repeat", "1", "--no-write"]
    cmd = [sys.executable, "benchmarks/run.py", *quick, "--corpora", str(tmp_path)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert cells(lines[0]) == COLUMNS
    rows = [cells(line) for line in lines[2:5]]
    assert [(r[1], r[2], r[3]) for r in rows] == [("sft", "rollforge", "1"), ("sft", "rollforge", "2"),
                                                  ("sft", "tutorial", "1")]  # fmt: skip
    assert all(float(r[4]) > 0 and float(r[7]) > 0 for r in rows)
    # PSS counts shared pages once: never above the RSS sum, which counts them once per process
    assert all(float(r[7].replace(",", "")) <= float(r[9].replace(",", "")) for r in rows)
    assert rows[0][10] == rows[2][10]  # the same filters keep the same rollouts on both sides
    assert rows[1][11].endswith("x") and rows[1][12].endswith("x")
    assert "`sft` >= 8x the tutorial" in done.stdout


def test_ceiling_prints_a_bound_per_command(tmp_path: Path) -> None:
    cmd = [sys.executable, "benchmarks/ceiling.py", "--sizes", "500", "--repeat", "1", "--no-write",
           "--corpora", str(tmp_path)]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    rows = [cells(line) for line in done.stdout.splitlines()[2:]]
    assert [r[1] for r in rows] == ["sft", "dpo", "build"]
    for row in rows:
        tutorial, work, start_up, ceiling = (float(v.rstrip("x")) for v in row[2:6])
        assert tutorial > 0 and work > 0 and start_up > 0
        assert abs(ceiling - tutorial / (start_up + work / 2)) < 0.05 * ceiling  # the bound as documented
