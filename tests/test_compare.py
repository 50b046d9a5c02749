"""``rollforge compare`` on a small fixture whose every number is computed by hand in the comments.

Fixture (rewards per rollout; success = reward >= 1.0; P4 baseline only, P5 candidate only):

    prompt  type  baseline            candidate           per-prompt mean diff
    P1      math  1, 0, 0, 1 (c=2)    1, 1, 1, 0 (c=3)    0.75 - 0.5 = +0.25
    P2      math  0, 0       (c=0)    1, 0       (c=1)    0.5  - 0   = +0.5
    P3      code  .5, 1, 0   (c=1)    .5, .5, .5 (c=0)    0.5  - 0.5 =  0
    P4      code  1, 1       (c=2)    -
    P5      code  -                   0, 1       (c=1)
    P6      math  1, 1       (c=2)    0, 1       (c=1)    0.5  - 1   = -0.5
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rollforge.cli.main import main
from rollforge.compare import CompareOptions, compare
from rollforge.success import Success

BASELINE = {
    "P1": ("math", [1, 0, 0, 1]),
    "P2": ("math", [0, 0]),
    "P3": ("code", [0.5, 1.0, 0.0]),
    "P4": ("code", [1, 1]),
    "P6": ("math", [1, 1]),
}
CANDIDATE = {
    "P1": ("math", [1, 1, 1, 0]),
    "P2": ("math", [1, 0]),
    "P3": ("code", [0.5, 0.5, 0.5]),
    "P5": ("code", [0, 1]),
    "P6": ("math", [0, 1]),
}


def rollout_line(prompt: str, reward: float, task_type: str, n: int, **extra: Any) -> str:
    """One rollout in NeMo Gym's line shape: responses_create_params.input + response.output + reward."""
    params = {"input": [{"role": "user", "content": f"Solve {prompt}.", "type": "message"}], "tools": [],
              "instructions": None, "temperature": None, "model": None}  # fmt: skip
    message = {"id": f"msg_{n}", "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": f"attempt {n}", "annotations": []}]}  # fmt: skip
    row = {"responses_create_params": params, "response": {"id": f"resp_{n}", "output": [message]},
           "reward": reward, "metadata": {"task_type": task_type}, **extra}  # fmt: skip
    return json.dumps(row) + "\n"


def write_side(path: Path, side: dict[str, tuple[str, list[float]]], extra_lines: str = "") -> str:
    lines = [
        rollout_line(p, r, t, i * 10 + j)
        for i, (p, (t, rs)) in enumerate(side.items())
        for j, r in enumerate(rs)
    ]
    path.write_text("".join(lines) + extra_lines)
    return str(path)


@pytest.fixture
def sides(tmp_path: Path) -> tuple[str, str]:
    return (
        write_side(tmp_path / "base.jsonl", BASELINE, "<PLACEHOLDER ROW>\n"),  # a reject: counted, not fatal
        write_side(tmp_path / "cand.jsonl", CANDIDATE),
    )


def test_hand_computed_numbers(sides: tuple[str, str]) -> None:
    r = compare([sides[0]], [sides[1]], CompareOptions(ks=(1, 2, 4, 5)))
    b, c, d = r["baseline"], r["candidate"], r["delta"]
    assert (b["rollouts"], b["prompts"], b["lines"], b["rejected"]) == (13, 5, 14, 1)
    assert b["rejected_by_reason"] == {"invalid_json": 1}
    assert b["mean_reward"] == pytest.approx(7.5 / 13)  # (2 + 0 + 1.5 + 2 + 2) / 13
    assert c["mean_reward"] == pytest.approx(7.5 / 13)  # (3 + 1 + 1.5 + 1 + 1) / 13
    assert b["success_rate"] == pytest.approx(7 / 13) and c["success_rate"] == pytest.approx(6 / 13)
    # pass@1 = mean c/n; pass@2 = mean 1 - C(n-c,2)/C(n,2); pass@4: P1 only (n=4); pass@5: no prompt has 5
    assert b["pass_at_k"] == pytest.approx(
        {"1": (2 / 4 + 0 + 1 / 3 + 1 + 1) / 5, "2": (5 / 6 + 0 + 2 / 3 + 1 + 1) / 5, "4": 1.0}
    )
    assert c["pass_at_k"] == pytest.approx(
        {"1": (3 / 4 + 1 / 2 + 0 + 1 / 2 + 1 / 2) / 5, "2": (1 + 1 + 0 + 1 + 1) / 5, "4": 1.0}
    )
    assert b["pass_at_k_prompts"] == {"1": 5, "2": 5, "4": 1}
    assert r["pass_at_k"]["2"] == pytest.approx({"baseline": 0.7, "candidate": 0.8, "delta": 0.1})
    # Paired: P1, P2, P3, P6 with diffs +0.25, +0.5, 0, -0.5
    assert (r["n_paired"], len(r["only_baseline"]), len(r["only_candidate"])) == (4, 1, 1)
    assert d["mean_reward"] == pytest.approx(0.0625)  # 0.25 / 4
    assert d["mean_reward_unpaired"] == pytest.approx(0.0)  # 7.5/13 - 7.5/13: pairing sees what this hides
    assert d["success_rate"] == pytest.approx((0.25 + 0.5 - 1 / 3 - 0.5) / 4)
    assert (d["wins"], d["losses"], d["ties"]) == (2, 1, 1)
    # Exact: |+-0.25 +- 0.5 +- 0.5| is at least 0.25 for all 16 sign vectors -> p = 16/16
    assert (d["p_value"], d["p_value_method"]) == (1.0, "exact")
    low, high = d["ci95"]
    assert -0.5 <= low < 0.0625 < high <= 0.5
    assert r["verdict"].startswith("no significant difference")
    assert "only 4 paired prompts (< 30): the CI and p-value are rough; collect more prompts" in r["warnings"]
    assert "1 prompts only in the baseline: left out of the paired numbers" in r["warnings"]
    assert "1 lines of the baseline rejected (invalid_json: 1)" in r["warnings"]


def test_breakdown_by_task_type(sides: tuple[str, str]) -> None:
    groups = compare([sides[0]], [sides[1]])["by_task_type"]
    assert list(groups) == ["code", "math"]
    math, code = groups["math"], groups["code"]
    assert (math["baseline"]["mean_reward"], math["candidate"]["mean_reward"]) == (0.5, 0.625)  # 4/8, 5/8
    assert math["n_paired"] == 3 and math["delta"]["mean_reward"] == pytest.approx(0.25 / 3)
    assert (math["delta"]["wins"], math["delta"]["losses"], math["delta"]["ties"]) == (2, 1, 0)
    assert math["delta"]["p_value"] == 1.0  # |+-0.25 +- 0.5 +- 0.5| >= 0.25 always
    assert (code["baseline"]["mean_reward"], code["candidate"]["mean_reward"]) == (0.7, 0.5)  # 3.5/5, 2.5/5
    assert (code["n_paired"], code["n_only_baseline"], code["n_only_candidate"]) == (1, 1, 1)
    assert code["delta"]["ci95"] == [0.0, 0.0] and code["delta"]["ties"] == 1


def test_success_field_and_by_field(tmp_path: Path) -> None:
    base = tmp_path / "b.jsonl"
    cand = tmp_path / "c.jsonl"
    base.write_text(
        rollout_line("Q", 0.2, "t", 1, is_correct=True, level="easy") + rollout_line("R", 0.9, "t", 2)
    )
    cand.write_text(
        rollout_line("Q", 0.4, "t", 3, is_correct=False, level="easy") + rollout_line("R", 0.9, "t", 4)
    )
    options = CompareOptions(success=Success(field="is_correct"), by="level", ks=(1,))
    r = compare([str(base)], [str(cand)], options)
    assert (r["baseline"]["success_rate"], r["candidate"]["success_rate"]) == (0.5, 0.0)
    assert r["success"] == "truthy is_correct" and r["by"] == "level"
    assert list(r["by_level"]) == ["(missing)", "easy"]
    assert r["by_level"]["easy"]["delta"]["mean_reward"] == pytest.approx(0.2)


def test_candidate_worse_with_enough_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = "".join(rollout_line(f"Q{i}", 1.0, "qa", i) for i in range(40))
    cand = "".join(rollout_line(f"Q{i}", 0.0 if i < 30 else 1.0, "qa", i) for i in range(40))
    (tmp_path / "b.jsonl").write_text(base)
    (tmp_path / "c.jsonl").write_text(cand)
    assert (
        main(["compare", str(tmp_path / "b.jsonl"), str(tmp_path / "c.jsonl"), "--json", "--seed", "3"]) == 0
    )
    r = json.loads(capsys.readouterr().out)
    assert r["n_paired"] == 40 and r["delta"]["mean_reward"] == -0.75
    assert r["delta"]["ci95"][1] < 0
    # 40 prompts > 16: Monte Carlo; |sum| = 30 needs all 30 signs equal (chance 2^-29): p = 1 / 10001
    assert (r["delta"]["p_value"], r["delta"]["p_value_method"]) == (1 / 10_001, "monte_carlo")
    assert r["delta"]["p_value_at_floor"] is True  # said as a bound, never as p = 9.999e-05
    assert r["verdict"] == (
        "candidate worse (the 95% CI of the mean reward difference excludes 0, and the permutation "
        "p <= 1/10001, the floor of 10000 permutations (none was as extreme))"
    )
    assert (r["delta"]["wins"], r["delta"]["losses"], r["delta"]["ties"]) == (0, 30, 10)
    assert r["warnings"] == []


def test_no_paired_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b.jsonl").write_text(rollout_line("A", 1.0, "t", 1))
    (tmp_path / "c.jsonl").write_text(rollout_line("B", 0.0, "t", 2))
    assert main(["compare", str(tmp_path / "b.jsonl"), str(tmp_path / "c.jsonl")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "rollforge: error: the two sides ran different task sets: only 0 prompts are on both sides "
        "(baseline 1, candidate 1) (collect both sides on the same tasks file, or pass "
        "--allow-different-tasks to pair the prompts they share)"
    )
    args = ["compare", str(tmp_path / "b.jsonl"), str(tmp_path / "c.jsonl"), "--allow-different-tasks"]
    assert main(args) == 1  # told to go on: shown, then refused, since no prompt pairs
    out = capsys.readouterr().out
    assert "no paired prompts: no paired comparison" in out
    assert "no prompt is in both files: nothing to pair" in out
    r = compare(
        [str(tmp_path / "b.jsonl")], [str(tmp_path / "c.jsonl")], CompareOptions(allow_different_tasks=True)
    )
    assert (
        "different task sets (--allow-different-tasks): only 0 prompts are on both sides" in r["warnings"][-1]
    )
    assert (r["n_paired"], r["delta"]["mean_reward"], r["delta"]["ci95"], r["delta"]["p_value"]) == (
        0,
        None,
        None,
        None,
    )
    assert r["delta"]["mean_reward_unpaired"] == -1.0


def test_cli_json_keys_terminal_and_html(
    sides: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "cmp.html"
    assert main(["compare", *sides, "--json", "--html", str(page), "--bootstrap", "2000"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in (
        "baseline",
        "candidate",
        "delta",
        "n_paired",
        "only_baseline",
        "only_candidate",
        "pass_at_k",
        "by_task_type",
    ):
        assert key in r
    for key in ("mean_reward", "success_rate"):
        assert key in r["baseline"] and key in r["candidate"]
    assert {"mean_reward", "ci95", "p_value"} <= set(r["delta"])
    assert r["settings"] == {"k": [1, 4], "bootstrap": 2000, "permutations": 10_000, "seed": 0}

    html = page.read_text()
    assert html.count("data:image/png;base64,") == 1
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "no significant difference" in html and "<td>math</td>" in html
    assert not list(tmp_path.glob(".cmp.html.*"))  # the atomic write left no temporary file

    assert main(["compare", *sides]) == 0
    out = capsys.readouterr().out
    assert "paired prompts: 4 (only in baseline: 1, only in candidate: 1)" in out
    assert "prompts better / worse / tied: 2 / 1 / 1" in out
    words = " ".join(out.split())  # rich wraps long lines at the console's width
    assert "no significant difference (the 95% CI of the mean reward difference includes 0, and the " in words
    assert "baseline: model unknown (no collect record beside its rollouts)" in out


def test_html_escapes_data(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text(rollout_line("A", 1.0, "<b>x</b>", 1))
    (tmp_path / "c.jsonl").write_text(rollout_line("A", 0.0, "<b>x</b>", 2))
    from rollforge.compare import render_html

    html = render_html(compare([str(tmp_path / "b.jsonl")], [str(tmp_path / "c.jsonl")]))
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
