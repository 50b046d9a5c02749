"""How a check states its verdict: pass, warn or n/a, with the title every check is shown under; a share-based
verdict on too few items is "not enough data", never a pass."""

from __future__ import annotations

from rollforge.report.data import NOT_APPLICABLE, PASS, WARN, Check, ReportData
from rollforge.report.fmt import count

TITLES = {
    "size": "Dataset size",
    "rewards": "Reward scales",
    "length": "Length distribution",
    "diversity": "Task diversity",
    "tool_use": "Tool use",
    "duplicates": "Duplicate answers",
    "margins": "DPO margins",
    "length_bias": "DPO length bias",
    "reasoning_sides": "DPO reasoning on one side",
    "validation": "Validation split",
    "leakage": "Train/validation overlap",
    "truncation": "Cut-off rollouts",
    "template": "Chat template",
    "manifest": "Manifest",
}


def verdict(name: str, warn: bool | None, detail: str, threshold: str) -> Check:
    """``warn`` None: the check does not apply to these inputs (n/a)."""
    status = NOT_APPLICABLE if warn is None else WARN if warn else PASS
    return Check(name, TITLES[name], status, detail, threshold)


def sampled_verdict(
    d: ReportData, name: str, warn: bool, detail: str, threshold: str, n: int, noun: str
) -> Check:
    """A share-based verdict: a pass on fewer than ``min_sample`` items is no evidence, so it warns as
    "not enough data" (a warning stays a warning, however few the items)."""
    need = int(d.thresholds["min_sample"])
    if not warn and n < need:
        return verdict(
            name,
            True,
            f"not enough data: {detail} (only {count(n)} {noun}; a pass needs ≥ {need})",
            threshold,
        )
    return verdict(name, warn, detail, threshold)
