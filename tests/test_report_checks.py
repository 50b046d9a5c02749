"""Each checklist item fires exactly past its threshold, and not at it."""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

import pytest

from rollforge.report import checks as C
from rollforge.report.data import ReportData, TokenInfo
from rollforge.report.metrics import DpoPart, SftPart
from rollforge.report.tokens import ESTIMATE_LABEL


def judge(sft: SftPart | None = None, dpo: DpoPart | None = None, **fields: Any) -> dict[str, C.Check]:
    tokens = fields.pop("tokens", TokenInfo("estimate", ESTIMATE_LABEL, fields.pop("max_tokens", None)))
    data = ReportData(sft=sft or SftPart(), dpo=dpo or DpoPart(), tokens=tokens, **fields)
    return {check.name: check for check in C.evaluate(data)}


def sft(rows: int = 2000, split: str = "all", **counts: Any) -> SftPart:
    return SftPart(rows_by_split=Counter({split: rows}), **counts)


def dpo(pairs: int = 1000, split: str = "all", **counts: Any) -> DpoPart:
    return DpoPart(pairs_by_split=Counter({split: pairs}), **counts)


def status(checks: dict[str, C.Check], name: str) -> str:
    return checks[name].status


def test_thresholds_are_the_documented_ones():
    assert (C.MIN_SFT_ROWS, C.MIN_DPO_PAIRS, C.MAX_TASK_SHARE, C.MIN_MEDIAN_MARGIN) == (1000, 500, 0.5, 0.2)
    assert (C.MAX_DUPLICATE_SHARE, C.MAX_TRUNCATED_SHARE, C.MAX_OVER_LENGTH_SHARE) == (0.05, 0.05, 0.01)


@pytest.mark.parametrize(
    ("sft_rows", "dpo_pairs", "expected"),
    [
        (1000, 500, "pass"),
        (999, 500, "warn"),
        (1000, 499, "warn"),
        (1000, 0, "pass"),
        (0, 500, "pass"),
        (0, 0, "warn"),
    ],
)
def test_size(sft_rows, dpo_pairs, expected):
    checks = judge(sft(sft_rows) if sft_rows else None, dpo(dpo_pairs) if dpo_pairs else None)
    assert status(checks, "size") == expected
    assert checks["size"].threshold == "SFT ≥ 1,000 rows, DPO ≥ 500 pairs"
    if expected == "warn" and (sft_rows or dpo_pairs):
        assert checks["size"].detail.endswith("small for fine-tuning")


@pytest.mark.parametrize(("over", "expected"), [(20, "pass"), (21, "warn")])
def test_length_over_max_tokens(over, expected):
    checks = judge(sft(2000, tokens=array("l", [10] * 2000), over_max=over), max_tokens=4096)
    assert status(checks, "length") == expected
    assert f"{over} of 2,000 SFT rows ({over / 2000:.1%}) over 4,096" in checks["length"].detail
    assert "(estimated)" in checks["length"].detail


def test_length_without_max_tokens_is_not_judged():
    assert status(judge(sft(10, tokens=array("l", [5] * 10))), "length") == "n/a"


@pytest.mark.parametrize(("counts", "expected"), [({"a": 50, "b": 50}, "pass"), ({"a": 51, "b": 49}, "warn")])
def test_one_task_type_dominating(counts, expected):
    checks = judge(sft(100, task_types=Counter(counts)))
    assert status(checks, "diversity") == expected
    assert "largest 'a'" in checks["diversity"].detail


@pytest.mark.parametrize(("calling", "expected"), [(50, "pass"), (49, "warn")])
def test_low_tool_use_where_tools_are_declared(calling, expected):
    assert status(judge(sft(200, declared_rows=100, declared_tool_rows=calling)), "tool_use") == expected


def test_tool_use_not_judged_without_declared_tools():
    assert status(judge(sft(100, tool_rows=0)), "tool_use") == "n/a"


@pytest.mark.parametrize(("duplicates", "expected"), [(5, "pass"), (6, "warn")])
def test_duplicates(duplicates, expected):
    assert status(judge(sft(100, duplicates=duplicates)), "duplicates") == expected


@pytest.mark.parametrize(("margins", "expected"), [([0.2, 0.2, 0.9], "pass"), ([0.1, 0.19, 0.9], "warn")])
def test_tiny_margins(margins, expected):
    checks = judge(dpo=dpo(30, margins=array("d", margins * 10)))
    assert status(checks, "margins") == expected
    assert checks["margins"].threshold == "median margin ≥ 0.2"


def test_margins_on_three_pairs_are_not_enough_data():
    checks = judge(dpo=dpo(3, margins=array("d", [0.5, 0.6, 0.9])))
    assert status(checks, "margins") == "warn"
    assert checks["margins"].detail.startswith("not enough data: median margin 0.6")
    assert "only 3 pairs; a pass needs ≥ 30" in checks["margins"].detail
    # a warning stays one on few pairs
    assert not judge(dpo=dpo(3, margins=array("d", [0.1] * 3)))["margins"].detail.startswith("not enough")


def test_pairs_whose_chosen_is_not_better():
    rewards = {"chosen_rewards": array("d", [1.0]), "rejected_rewards": array("d", [1.0])}
    assert status(judge(dpo=dpo(1, **rewards)), "rewards") == "pass"
    assert status(judge(dpo=dpo(1, not_preferred=1, **rewards)), "rewards") == "warn"


def test_validation_split():
    declared = {"train": "sft/train.jsonl", "validation": "sft/validation.jsonl"}
    empty = judge(sft(100, split="train"), splits=declared)
    assert (
        status(empty, "validation") == "warn" and empty["validation"].detail == "SFT validation split empty"
    )
    held = SftPart(rows_by_split=Counter({"train": 90, "validation": 10}))
    assert status(judge(held, splits=declared), "validation") == "pass"
    assert status(judge(sft(100)), "validation") == "n/a"


def test_prompts_in_both_splits():
    both = SftPart(rows_by_split=Counter({"train": 90, "validation": 10}))
    assert status(judge(both, shared_prompts=0), "leakage") == "pass"
    assert status(judge(both, shared_prompts=1), "leakage") == "warn"
    assert status(judge(sft(100)), "leakage") == "n/a"


@pytest.mark.parametrize(("cut", "expected"), [(5, "pass"), (6, "warn")])
def test_cut_off_rollouts(cut, expected):
    assert status(judge(sft(100, truncation_known=100, truncated=cut)), "truncation") == expected


def test_template_errors_only_judged_with_a_chat_template():
    assert status(judge(sft(10)), "template") == "n/a"
    ok = TokenInfo("chat_template", "tokens (m chat template)", None, 0)
    bad = TokenInfo("chat_template", "tokens (m chat template)", None, 2)
    assert status(judge(sft(10), tokens=ok), "template") == "pass"
    assert status(judge(sft(10), tokens=bad), "template") == "warn"


def test_manifest_counts_against_the_files():
    acc = {"sft": {"train": 90, "validation": 10}, "dpo": {"train": 40, "validation": 0}}
    rows = SftPart(rows_by_split=Counter({"train": 90, "validation": 10}))
    pairs = DpoPart(pairs_by_split=Counter({"train": 40}))
    assert status(judge(rows, pairs, manifest={"accounting": acc}, accounting=acc), "manifest") == "pass"
    short = SftPart(rows_by_split=Counter({"train": 89, "validation": 10}))
    checks = judge(short, pairs, manifest={"accounting": acc}, accounting=acc)
    assert status(checks, "manifest") == "warn"
    assert checks["manifest"].detail == "train: manifest 90 SFT rows, files 89"
    assert status(judge(rows), "manifest") == "n/a"
    as_splits = {"sft": {"splits": {"train": 91, "validation": 10}}}
    checks = judge(rows, manifest={"accounting": as_splits}, accounting=as_splits)
    assert checks["manifest"].detail == "train: manifest 91 SFT rows, files 90"


def test_warnings_state_their_threshold():
    data = ReportData(sft=sft(10), dpo=DpoPart(), tokens=TokenInfo("estimate", ESTIMATE_LABEL, None))
    data.checks = C.evaluate(data)
    assert data.warnings == [
        "Dataset size: 10 SFT rows: small for fine-tuning (threshold: SFT ≥ 1,000 rows, DPO ≥ 500 pairs)",
        "Duplicate answers: not enough data: 0 SFT rows repeat an earlier row's assistant text (0.0%) "
        "(only 10 SFT rows; a pass needs ≥ 30) (threshold: ≤ 5% of SFT rows)",
    ]
