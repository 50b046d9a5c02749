"""A report that can fail: no check true by construction, "not enough data" instead of a pass on a handful of
items, a catch-all task type counted as unknown, cut-off rollouts from the manifest, the DPO traps (length
bias, reasoning on one side only, mixed reward scales), thresholds from the recipe's `checks:` map, and
`build --fail-on-warn`. The last tests build releases from the real NeMo Gym files (../shared, skipped
when absent)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rollforge import api
from rollforge.cli.main import main
from rollforge.errors import RollforgeError
from rollforge.report import checks as C
from rollforge.report.data import ReportData, TokenInfo
from rollforge.report.metrics import DpoPart, SftPart
from rollforge.report.thresholds import thresholds
from rollforge.report.tokens import ESTIMATE_LABEL


def judge(sft: SftPart | None = None, dpo: DpoPart | None = None, **fields: Any) -> dict[str, C.Check]:
    data = ReportData(
        sft=sft or SftPart(),
        dpo=dpo or DpoPart(),
        tokens=TokenInfo("estimate", ESTIMATE_LABEL, None),
        **fields,
    )
    return {check.name: check for check in C.evaluate(data)}


def sft(rows: int, **counts: Any) -> SftPart:
    return SftPart(rows_by_split=Counter({"all": rows}), **counts)


def pair(
    chosen: list[dict], rejected: list[dict], chosen_reward: float = 1.0, rejected_reward: float = 0.0
) -> dict:
    prompt = [{"role": "user", "content": "q"}]
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "chosen_reward": chosen_reward,
        "rejected_reward": rejected_reward,
    }


def dpo_part(rows: list[dict], lengths: list[tuple[int, int]]) -> DpoPart:
    part = DpoPart()
    for n, (row, tokens) in enumerate(zip(rows, lengths, strict=True)):
        part.add(row, "all", f"p{n}", tokens, False)
    return part


ANSWER = [{"role": "assistant", "content": "4"}]
REASONED = [{"role": "assistant", "content": "4", "reasoning_content": "2+2 is 4"}]


def test_chosen_above_rejected_is_no_longer_a_check_that_passes_by_construction() -> None:
    """A rollforge pair always has chosen > rejected: the rewards check judges reward scales instead."""
    checks = judge(sft(100, task_rewards={"math": [0.0, 1.0], "game": [-2.0, 10.0]}))
    assert checks["rewards"].title == "Reward scales"
    assert checks["rewards"].status == "warn" and "mixed scales" in checks["rewards"].detail
    assert "'game' -2..10" in checks["rewards"].detail
    assert judge(sft(100, task_rewards={"math": [0.0, 1.0], "code": [0.0, 0.5]}))["rewards"].status == "pass"


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"general": 48, "math": 26, "code": 26}, "warn"),  # no type over 50%, but half the rows are unknown
        ({"general": 10, "math": 45, "code": 45}, "pass"),
        ({"general": 100}, "warn"),  # nothing named at all
    ],
)
def test_a_catch_all_task_type_counts_as_unknown(counts: dict[str, int], expected: str) -> None:
    checks = judge(sft(sum(counts.values()), task_types=Counter(counts)))
    assert checks["diversity"].status == expected
    assert "catch-all 'general' (unknown type)" in checks["diversity"].detail


def test_diversity_on_a_few_rows_is_not_enough_data() -> None:
    checks = judge(sft(4, task_types=Counter({"a": 2, "b": 2})))
    assert checks["diversity"].status == "warn" and checks["diversity"].detail.startswith("not enough data")


def test_cut_off_rollouts_come_from_the_manifest() -> None:
    acc = {"lines": 110, "rollouts": 110, "sft": {"filtered": {"truncated": 14}}}
    manifest = {"accounting": acc, "recipe": {"drop_truncated": True}, "inventory": {"truncated": 0}}
    check = judge(sft(96), manifest=manifest, accounting=acc)["truncation"]
    assert check.status == "pass"
    assert check.detail == "none in the release: 14 of 110 rollouts read were cut off and dropped (manifest)"
    kept = {"accounting": acc, "recipe": {"drop_truncated": False}, "inventory": {"truncated": 14}}
    check = judge(sft(110), manifest=kept, accounting=acc)["truncation"]
    assert check.status == "warn" and "14 of 110 rollouts read were cut off and kept" in check.detail
    assert judge(sft(110))["truncation"].status == "n/a"  # rows that do not record it, no manifest


@pytest.mark.parametrize(("longer", "expected"), [(70, "pass"), (71, "warn")])
def test_length_bias(longer: int, expected: str) -> None:
    part = dpo_part([pair(ANSWER, ANSWER)] * 100, [(20, 10)] * longer + [(10, 20)] * (100 - longer))
    check = judge(dpo=part)["length_bias"]
    assert check.status == expected
    assert check.detail == f"chosen longer in {longer} of 100 pairs ({longer}.0%)"


def test_length_bias_on_three_pairs_is_not_enough_data() -> None:
    check = judge(dpo=dpo_part([pair(ANSWER, ANSWER)] * 3, [(10, 20)] * 3))["length_bias"]
    assert check.status == "warn" and check.detail.startswith("not enough data")


@pytest.mark.parametrize(("one_sided", "expected"), [(10, "pass"), (11, "warn")])
def test_reasoning_on_one_side_only(one_sided: int, expected: str) -> None:
    rows = [pair(REASONED, ANSWER)] * one_sided + [pair(REASONED, REASONED)] * (100 - one_sided)
    check = judge(dpo=dpo_part(rows, [(10, 10)] * 100))["reasoning_sides"]
    assert check.status == expected
    assert f"{one_sided} of 100 pairs reason on one side only" in check.detail
    think = [{"role": "assistant", "content": "<think>2+2</think>4"}]
    assert dpo_part([pair(ANSWER, think)], [(1, 1)]).one_sided_reasoning == 1


def test_thresholds_are_set_by_name_and_misspellings_are_named() -> None:
    assert thresholds({"min_sft_rows": 10})["min_sft_rows"] == 10.0
    with pytest.raises(RollforgeError, match="unknown threshold 'min_sft_row'") as caught:
        thresholds({"min_sft_row": 10})
    assert caught.value.hint == "did you mean 'min_sft_rows'?"
    checks = judge(sft(50), thresholds=thresholds({"min_sft_rows": 50, "min_sample": 10}))
    assert checks["size"].status == "pass" and checks["size"].threshold.startswith("SFT ≥ 50 rows")


@pytest.fixture
def corpus(shared_rollouts: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(shared_rollouts, folder, ignore=shutil.ignore_patterns("*.md"))
    return folder


def test_a_real_release_is_judged_with_its_manifest(corpus: Path, tmp_path: Path) -> None:
    release = api.build(inputs=[str(corpus)], output=str(tmp_path / "rel"), success_only=False, workers=2)
    data = api.report(release.path, None)
    checks = {c.name: c for c in data.checks}
    assert checks["truncation"].status != "n/a"  # from the manifest
    assert checks["manifest"].status == "pass"
    # two real environments reward on other scales than 0..1 (the shared README names them)
    assert checks["rewards"].status == "warn" and "grl_sokoban" in checks["rewards"].detail
    assert release.manifest["warnings"] == data.warnings
    page = (release.path / "report.html").read_text()
    assert "Reward scale by input file" in page and page.count("outside 0..1") == 2  # sokoban, tetris
    assert "pairs with reasoning on one side only" in page and "checks:" in page


def test_recipe_thresholds_and_fail_on_warn(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recipe = tmp_path / "rollforge.yaml"
    recipe.write_text(
        f"inputs: [{corpus}]\noutput: {tmp_path / 'rel'}\nsuccess_only: false\n"
        "checks: {min_sft_rows: 10, max_unknown_task_share: 1.0}\n"
    )
    assert main(["build", str(recipe), "-q", "--fail-on-warn"]) == 1
    captured = capsys.readouterr()
    assert "1 report check warns (--fail-on-warn)" in captured.err
    manifest = json.loads((tmp_path / "rel" / "v1" / "manifest.json").read_text())
    assert not any(w.startswith("Dataset size") for w in manifest["warnings"])  # min_sft_rows: 10
    assert not any(w.startswith("Task diversity") for w in manifest["warnings"])
    report = api.report(tmp_path / "rel" / "v1", None)  # a release's report judges as its build did
    assert report.thresholds["min_sft_rows"] == 10 and report.warnings == manifest["warnings"]
    assert main(["build", str(recipe), "-q"]) == 0  # warnings without --fail-on-warn: exit 0
    recipe.write_text(f"inputs: [{corpus}]\noutput: {tmp_path / 'rel'}\nchecks: {{min_sft_row: 10}}\n")
    assert main(["build", str(recipe), "-q"]) == 1
    assert "did you mean 'min_sft_rows'?" in capsys.readouterr().err


def test_leakage_is_judged_on_the_users_text_not_on_prompt_ids() -> None:
    """A release splits by prompt id, so ids never overlap: the same question under another system prompt
    (another prompt id) in both splits is the leak that check must catch."""
    from rollforge.report import compute_report

    def sft_row(system: str, pid: str) -> dict:
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": "What is  2 + 2?"},
            {"role": "assistant", "content": "4"},
        ]
        return {"messages": messages, "prompt_id": pid, "reward": 1.0}

    rows = [("train", sft_row("Be brief.", "a")), ("validation", sft_row("Be kind.", "b"))]
    data = compute_report(rows, None, splits={"train": "t", "validation": "v"})
    check = {c.name: c for c in data.checks}["leakage"]
    assert data.prompts == 2 and data.shared_prompts == 1
    assert check.status == "warn" and check.detail.startswith("1 user questions in both splits")
