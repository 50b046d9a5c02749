"""Issue 14: whatever one line holds, the run goes on. Each hostile line among good ones is rejected with its
documented reason (or kept, if it is a usable rollout) by inspect, sft, dpo, build and report alike, and
every good line is still a rollout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hostile import HOSTILE, good_lines, mixed_file, pairable

from rollforge.cli.main import main
from rollforge.reasons import REJECT_REASONS

GOOD = 30


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return json.loads(captured.out)


def rejected_reasons(summary: dict[str, Any]) -> dict[str, int]:
    rejected = summary["rejected"]
    if isinstance(rejected, list):  # inspect lists every reject
        return {r: sum(1 for x in rejected if x["reason"] == r) for r in {x["reason"] for x in rejected}}
    return rejected


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_one_hostile_line_never_stops_a_run(
    kind: str, tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line, reason = HOSTILE[kind]
    good = good_lines(examples_dir, GOOD)
    path = str(mixed_file(tmp_path / "mixed.jsonl", good, pairable(line)))
    expected = {reason: 2} if reason else {}
    rollouts = GOOD + (0 if reason else 2)
    summaries = {
        "inspect": run_json(capsys, ["inspect", path, "--json", "--workers", "1"]),
        "sft": run_json(capsys, ["sft", path, "-o", str(tmp_path / "sft.jsonl"), "--json", "--workers", "2"]),
        "dpo": run_json(capsys, ["dpo", path, "-o", str(tmp_path / "dpo.jsonl"), "--json", "--workers", "1"]),
        "build": run_json(capsys, ["build", path, "-o", str(tmp_path / "rel"), "--json", "--workers", "1"])[
            "accounting"
        ],
        "report": run_json(capsys, ["report", path, "-o", str(tmp_path / "r.html"), "--json"])["accounting"],
    }
    for command, summary in summaries.items():
        assert summary["lines"] == GOOD + 2, command
        assert summary["rollouts"] == rollouts, command  # every good line is still a rollout
        assert rejected_reasons(summary) == expected, command
    assert reason is None or reason in REJECT_REASONS  # documented


def test_reward_statistics_do_not_overflow(
    tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rewards near the float limit, far apart: inspect's mean, std and quantiles stay finite."""
    huge = [HOSTILE["huge_finite_reward"][0].replace("1e200", value) for value in ("1.7e308", "-1.7e308")]
    path = str(mixed_file(tmp_path / "mixed.jsonl", good_lines(examples_dir, 6), huge))
    reward = run_json(capsys, ["inspect", path, "--json", "--workers", "1"])["reward"]
    assert reward["count"] == 8 and reward["max"] == 1.7e308 and reward["min"] == -1.7e308
    assert all(isinstance(reward[k], float) for k in ("mean", "std"))
    assert reward["std"] > 1e307 and abs(reward["mean"]) < 1e300
    assert all(abs(v) <= 1.7e308 for v in reward["quantiles"].values())


def test_a_conversion_reject_is_a_reject_in_every_command(
    tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sft's cheap first look would drop this line as `no_assistant_turn`; the conversion rejects it, and
    a reject is one whatever the filters."""
    line = HOSTILE["no_assistant_turn_malformed_item"][0]
    path = str(mixed_file(tmp_path / "mixed.jsonl", good_lines(examples_dir, 6), [line]))
    out = str(tmp_path / "sft.jsonl")
    for flags in ([], ["--success-only"], ["--min-reward", "5"], ["--require-tool-use"]):
        acc = run_json(capsys, ["sft", path, "-o", out, "--json", "--workers", "1", "--allow-empty", *flags])
        assert acc["rejected"] == {"malformed_item": 1}, flags
        assert "no_assistant_turn" not in acc["filtered"], flags
