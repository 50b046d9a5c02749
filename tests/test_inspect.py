"""``rollforge inspect``, run in-process: the JSON summary (exact, on a small fixture), the terminal tables, stdin,
the warnings (each fires on a fixture made for it and stays silent otherwise), and the bundled example corpus
(which must be exactly what ``rollforge example`` writes with its defaults)."""

from __future__ import annotations

import io
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from gym_rollouts import answer, call, result, rollout, think, tool, user, write_jsonl

from rollforge.cli.main import main
from rollforge.io.sources import companion_kind
from rollforge.reasons import REJECT_REASONS

Row = dict[str, Any] | str


def task(n: int, text: str, reward: float | None, **kw: Any) -> dict[str, Any]:
    return rollout([user(f"task {n}")], [answer(text)], reward, **kw)


# Six non-blank lines: four rollouts of three prompts (one prompt with a reward spread, one using a tool, one
# truncated with hidden reasoning), a broken line and an input row; and a blank line that is not a line.
SMALL: list[Row] = [
    task(1, "a", 0.0, metadata={"task_type": "math"}),
    task(1, "b", 1.0, metadata={"task_type": "math"}),
    rollout(
        [user("task 2")],
        [call("c1", "lookup", q="x"), result("c1", "found"), answer("done")],
        0.5,
        tools=[tool("lookup", "q")],
        agent_ref={"name": "tools_agent"},
    ),
    "",
    "{bad",
    json.dumps({"responses_create_params": {"input": "task 9"}, "_ng_task_index": 9}),
    rollout(
        [user("task 3")], [think(None), answer("cut")], 0.25, truncated=True, metadata={"task_type": "math"}
    ),
]


def inspect_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["inspect", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "run.jsonl"
    write_jsonl(path, SMALL)
    write_jsonl(tmp_path / "run_failures.jsonl", ['{"error": "timeout"}', '{"error": "crash"}'])
    (tmp_path / "run_aggregate_metrics.json").write_text('{"mean/reward": 0.4}')
    return path


def test_the_json_summary_of_a_small_fixture(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = inspect_json(capsys, str(small.parent))
    path = str(small)
    assert (s["lines"], s["rollouts"], s["prompts"]) == (6, 4, 3)
    assert s["lines"] == s["rollouts"] + len(s["rejected"])
    assert s["rejected"] == [
        {"file": path, "line": 5, "reason": "invalid_json"},
        {"file": path, "line": 6, "reason": "no_response"},
    ]
    assert {k: v["count"] for k, v in s["rejected_by_reason"].items()} == {
        "invalid_json": 1,
        "no_response": 1,
    }
    assert s["rejected_by_reason"]["no_response"]["examples"][0].startswith(f"{path}:6: ")
    assert s["rollouts_per_prompt"] == {"1": 2, "2": 1}
    assert s["prompts_with_reward_spread"] == 1
    rewards = [0.0, 1.0, 0.5, 0.25]
    mean = sum(rewards) / 4
    assert {k: s["reward"][k] for k in ("count", "min", "max", "mean", "distinct", "values")} == {
        "count": 4, "min": 0.0, "max": 1.0, "mean": mean, "distinct": 4, "values": sorted(rewards)}  # fmt: skip
    assert s["reward"]["std"] == pytest.approx(math.sqrt(sum((r - mean) ** 2 for r in rewards) / 4))
    assert s["reward"]["quantiles"]["p50"] == pytest.approx(0.375)
    assert s["task_types"] == {"math": 3, "tools_agent": 1}
    assert s["items"] == {"function_call": 1, "function_call_output": 1, "message:assistant": 4,
                          "message:user": 4, "reasoning": 1}  # fmt: skip
    assert s["reasoning"] == {"reasoning_encrypted": 1}
    assert s["facts"] == {"reasoning_encrypted": 1, "truncated": 1}
    assert (s["tool_use_rate"], s["truncated"]) == (0.25, 1)
    assert s["files"] == {path: 4}
    assert sorted((c["kind"], c["lines"]) for c in s["companions"]) == [
        ("aggregate_metrics", None),
        ("failures", 2),
    ]
    # a line without agent_ref.name belongs to its file's stem; rejects of a mixed file to the stem too
    assert {name: (e["rollouts"], e["rejected"]) for name, e in s["environments"].items()} == {
        "run": (3, 2),
        "tools_agent": (1, 0),
    }
    assert s["warnings"] == [
        "2 of 6 lines rejected: check the reject reasons",
        "1 truncated rollouts (incomplete_details): dropped from SFT by default",
        "some reasoning is hidden or encrypted: there is no text of it to train on",
    ]


def test_the_terminal_tables(
    small: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich: one table row per line
    assert main(["inspect", str(small.parent)]) == 0
    out = capsys.readouterr().out

    def row(label: str, value: str) -> bool:  # a table row: the label, box drawing or spaces, the value
        return re.search(re.escape(label) + r"[\s│|┃]+" + re.escape(value) + r"[\s│|┃]", out) is not None

    for label, value in [
        ("lines", "6"),
        ("rollouts", "4"),
        ("rejected", "2"),
        ("prompts", "3"),
        ("prompts with reward spread (DPO-ready)", "1"),
        ("rollouts per prompt", "1x: 2, 2x: 1"),
        ("tool-use rate", "25.0%"),
        ("truncated", "1"),
        ("reasoning_encrypted", "1"),
        ("message:assistant", "4"),
        ("math", "3"),
    ]:
        assert row(label, value), (label, value, out)
    for reason in ("invalid_json", "no_response"):  # rejected lines: by reason, then file:line and message
        assert f"{reason}: 1 line\n" in out, out
    for title in (
        "reward",
        "task types",
        "items by type (input + output)",
        "reasoning shapes",
        "rejected lines",
    ):
        assert title in out
    # a reject's file:line (relative to the folder the files share, named once) and the mean reward
    assert f"{small.name}:5" in out and f"files in {small.parent}" in out and "0.4375" in out
    assert f"companion failures: {small.parent / 'run_failures.jsonl'} (2 failed rows skipped)" in out
    assert "companion aggregate_metrics:" in out
    env_warnings = 2  # two environments (the file's stem, and an agent_ref.name): see test_environments
    assert out.count("warning:") == 3 + env_warnings and "warning: 2 of 6 lines rejected" in out


def test_stdin_is_read_like_a_file(
    small: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from_file = inspect_json(capsys, str(small))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(small.read_bytes())))
    from_stdin = inspect_json(capsys, "-")
    assert from_stdin["rejected"] == [{**r, "file": "-"} for r in from_file["rejected"]]
    assert from_stdin["files"] == {"-": 4} and from_stdin["companions"] == []
    for key in (
        "lines",
        "rollouts",
        "prompts",
        "reward",
        "items",
        "facts",
        "warnings",
        "rollouts_per_prompt",
    ):
        assert from_stdin[key] == from_file[key], key


HEALTHY: list[Row] = [task(1, "a", 0.0), task(1, "b", 1.0), task(2, "c", 1.0), task(2, "d", 0.0)]
NO_DPO = "no prompt has two rollouts with different rewards: no DPO pairs possible"
SINGLE = "every prompt has a single rollout: collect with --num-repeats > 1 for DPO"
HIDDEN = "some reasoning is hidden or encrypted: there is no text of it to train on"


@pytest.mark.parametrize(
    ("rows", "warnings"),
    [
        (HEALTHY, []),
        (
            ["<PLACEHOLDER ROW>", "{bad"],
            [
                "no line is a usable rollout: see the reject reasons",
                "2 of 2 lines rejected: check the reject reasons",
            ],
        ),
        ([task(1, "a", 1.0), task(1, "b", 1.0), task(2, "c", 0.0), task(2, "d", 0.0)], [NO_DPO]),
        ([task(1, "a", 0.0), task(2, "b", 1.0)], [NO_DPO, SINGLE]),
        ([task(1, "a", 1), task(1, "b", 1)], [NO_DPO, "every reward is 1.0: nothing to filter or pair on"]),
        ([*HEALTHY, "{bad"], ["1 of 5 lines rejected: check the reject reasons"]),
        (
            [*HEALTHY, *HEALTHY[:2], *HEALTHY[:3], "{bad"],
            ["1 of 10 lines rejected: check the reject reasons"],
        ),
        ([*HEALTHY, *HEALTHY, *HEALTHY[:2], "{bad"], []),  # 1 of 11: under 10%
        (
            [*HEALTHY, task(3, "x", 1.0, truncated=True), task(3, "y", 0.0)],
            ["1 truncated rollouts (incomplete_details): dropped from SFT by default"],
        ),
        ([*HEALTHY, rollout([user("task 3")], [think(None), answer("x")], 0.5)], [HIDDEN]),
        ([*HEALTHY, rollout([user("task 3")], [think("visible"), answer("x")], 0.5)], []),
    ],
    ids=[
        "healthy",
        "nothing_usable",
        "no_spread",
        "single_rollouts",
        "one_reward",
        "rejects_20pct",
        "rejects_10pct",
        "rejects_9pct",
        "truncated",
        "hidden_reasoning",
        "visible_reasoning",
    ],
)
def test_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[Row], warnings: list[str]
) -> None:
    path = write_jsonl(tmp_path / "rollouts.jsonl", rows)
    got = inspect_json(capsys, path)["warnings"]
    # rows repeated to reach a share repeat lines: that warning is tested in test_duplicates
    assert [w for w in got if "repeat an earlier line" not in w] == warnings


def test_a_missing_path_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path / "nope.jsonl"), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"rollforge: error: no such file or directory: {tmp_path / 'nope.jsonl'}\n"


def test_the_example_corpus_is_accounted_for(examples_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rollout_files = [p for p in sorted(examples_dir.glob("*.jsonl")) if companion_kind(str(p)) is None]
    non_blank = sum(1 for p in rollout_files for line in p.read_bytes().splitlines() if line.strip())
    s = inspect_json(capsys, str(examples_dir), "--workers", "1")
    assert s["lines"] == non_blank == s["rollouts"] + len(s["rejected"])
    assert s["rollouts"] == 480 and {r["reason"] for r in s["rejected"]} <= set(REJECT_REASONS)
    assert sum(s["files"].values()) == s["rollouts"]
    kinds = {c["kind"]: c["lines"] for c in s["companions"]}
    assert kinds == {"aggregate_metrics": None, "failures": 1, "materialized_inputs": None}
    assert s["warnings"] == [
        "4 truncated rollouts (incomplete_details): dropped from SFT by default",
        "some reasoning is hidden or encrypted: there is no text of it to train on",
    ]
    # The parallel path (a process per file) gives the same summary, line numbers included.
    assert inspect_json(capsys, str(examples_dir), "--workers", "3") == s


def test_the_bundled_example_is_what_rollforge_example_writes(
    examples_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["example", "-o", str(tmp_path / "ex")]) == 0
    assert capsys.readouterr().out.startswith("wrote 480 rollouts")
    bundled = sorted(p.name for p in examples_dir.iterdir())
    assert sorted(p.name for p in (tmp_path / "ex").iterdir()) == bundled
    for name in bundled:
        assert (tmp_path / "ex" / name).read_bytes() == (examples_dir / name).read_bytes(), name


def test_pipelines_count_rollouts_without_keeping_a_value_each(examples_dir: Path) -> None:
    """sft, dpo and sample read no statistics: their inventory counts, and keeps nothing per rollout."""
    from rollforge.engine.job import Job
    from rollforge.engine.local import scan
    from rollforge.io.sources import discover

    full = scan(discover([str(examples_dir)]), Job(), None, 2).inventory
    counted = scan(discover([str(examples_dir)]), Job(statistics=False), None, 2).inventory
    assert (counted.lines, counted.rollouts, len(counted.rejected)) == (full.lines, 480, len(full.rejected))
    assert full.rollouts == len(full.rewards) == 480
    assert not (counted.rewards or counted.prompt_ids or counted.prompt_rewards)
    with pytest.raises(AssertionError, match="counts only"):
        counted.summary()
