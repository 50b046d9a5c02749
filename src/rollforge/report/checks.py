"""The pre-training checklist: each item judged against a threshold a practitioner would set.

All thresholds live here, as named constants; each check's text states the one it applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rollforge.report.data import NOT_APPLICABLE, PASS, WARN, Check, ReportData
from rollforge.report.fmt import count, num, pct
from rollforge.report.metrics import UNSPLIT, describe, share

MIN_SFT_ROWS = 1000  # fewer SFT rows than this is small for fine-tuning
MIN_DPO_PAIRS = 500  # fewer DPO pairs than this is small for preference tuning
MAX_OVER_LENGTH_SHARE = 0.01  # rows over --max-tokens get truncated (answer lost) or dropped by the trainer
MAX_TASK_SHARE = 0.50  # one task type above this share dominates what the model learns
MIN_TOOL_USE_RATE = 0.50  # of rows that declare tools, at least this share should call one
MAX_DUPLICATE_SHARE = 0.05  # repeated answers above this share overweight a few examples
MIN_MEDIAN_MARGIN = 0.2  # DPO pairs whose rewards barely differ carry little preference signal
MAX_TRUNCATED_SHARE = 0.05  # rollouts cut off by max_output_tokens teach unfinished answers


TITLES = {
    "size": "Dataset size",
    "rewards": "Reward distribution",
    "length": "Length distribution",
    "diversity": "Task diversity",
    "tool_use": "Tool use",
    "duplicates": "Duplicate answers",
    "margins": "DPO margins",
    "validation": "Validation split",
    "leakage": "Train/validation overlap",
    "truncation": "Cut-off rollouts",
    "template": "Chat template",
    "manifest": "Manifest",
}


def _check(name: str, warn: bool | None, detail: str, threshold: str) -> Check:
    """``warn`` None: the check does not apply to these inputs (n/a)."""
    status = NOT_APPLICABLE if warn is None else WARN if warn else PASS
    return Check(name, TITLES[name], status, detail, threshold)


def check_size(d: ReportData) -> Check:
    sft, dpo = d.sft.rows, d.dpo.pairs
    parts = [f"{count(sft)} SFT rows"] * bool(sft) + [f"{count(dpo)} DPO pairs"] * bool(dpo)
    small = (sft and sft < MIN_SFT_ROWS) or (dpo and dpo < MIN_DPO_PAIRS) or not (sft or dpo)
    detail = ", ".join(parts) or "no rows"
    if small and (sft or dpo):
        detail += ": small for fine-tuning"
    threshold = f"SFT ≥ {MIN_SFT_ROWS:,} rows, DPO ≥ {MIN_DPO_PAIRS:,} pairs"
    return _check("size", bool(small), detail, threshold)


def check_rewards(d: ReportData) -> Check:
    sft, chosen = describe(d.sft.rewards), describe(d.dpo.chosen_rewards)
    parts = []
    if sft["count"]:
        q = sft["quantiles"]
        parts.append(f"SFT reward mean {num(sft['mean'])} (min {num(sft['min'])}, median {num(q['p50'])})")
    if chosen["count"]:
        rejected = describe(d.dpo.rejected_rewards)
        parts.append(f"DPO chosen mean {num(chosen['mean'])} vs rejected {num(rejected['mean'])}")
    if d.dpo.not_preferred:
        parts.append(f"{count(d.dpo.not_preferred)} pairs whose chosen reward is not above the rejected one")
    threshold = "every DPO pair's chosen reward above its rejected reward"
    return _check(
        "rewards", bool(d.dpo.not_preferred) if parts else None, "; ".join(parts) or "no rewards", threshold
    )


def check_length(d: ReportData) -> Check:
    limit = d.tokens.max_tokens
    source = describe(d.sft.tokens if d.sft.rows else d.dpo.chosen_tokens)
    rows = d.sft.rows + d.dpo.pairs
    over = d.sft.over_max + d.dpo.over_max
    estimated = " (estimated)" if d.tokens.method == "estimate" else ""
    detail = "no rows"
    if source["count"]:
        detail = f"median {num(source['quantiles']['p50'])} tokens{estimated}, max {num(source['max'])}"
    threshold = f"≤ {MAX_OVER_LENGTH_SHARE:.0%} of rows over --max-tokens"
    if limit is None or not rows:
        return _check("length", None, detail + "; no --max-tokens given" * bool(rows), threshold)
    parts = []
    if d.sft.rows:
        parts.append(f"{count(d.sft.over_max)} of {count(d.sft.rows)} SFT rows")
    if d.dpo.pairs:
        parts.append(f"{count(d.dpo.over_max)} of {count(d.dpo.pairs)} DPO pairs")
    detail += f"; {' and '.join(parts)} ({pct(share(over, rows))}) over {count(limit)}"
    return _check("length", share(over, rows) > MAX_OVER_LENGTH_SHARE, detail, threshold)


def check_diversity(d: ReportData) -> Check:
    largest = d.largest_task
    threshold = f"largest task type ≤ {MAX_TASK_SHARE:.0%} of rows"
    if largest is None:
        return _check("diversity", None, "no task types", threshold)
    name, top = largest
    detail = f"{len(d.task_types)} task types, normalised entropy {d.task_entropy:.2f}, largest {name!r} {pct(top)}"
    return _check("diversity", top > MAX_TASK_SHARE, detail, threshold)


def check_tool_use(d: ReportData) -> Check:
    s = d.sft
    threshold = f"≥ {MIN_TOOL_USE_RATE:.0%} of rows that declare tools call one"
    if not s.declared_rows:
        return _check("tool_use", None, "no SFT row declares tools", threshold)
    rate = share(s.declared_tool_rows, s.declared_rows)
    detail = f"{count(s.declared_tool_rows)} of {count(s.declared_rows)} rows that declare tools call one ({pct(rate)})"
    return _check("tool_use", rate < MIN_TOOL_USE_RATE, detail, threshold)


def check_duplicates(d: ReportData) -> Check:
    s = d.sft
    threshold = f"≤ {MAX_DUPLICATE_SHARE:.0%} of SFT rows"
    if not s.rows:
        return _check("duplicates", None, "no SFT rows", threshold)
    rate = share(s.duplicates, s.rows)
    detail = f"{count(s.duplicates)} SFT rows repeat an earlier row's assistant text ({pct(rate)})"
    return _check("duplicates", rate > MAX_DUPLICATE_SHARE, detail, threshold)


def check_margins(d: ReportData) -> Check:
    m = describe(d.dpo.margins)
    threshold = f"median margin ≥ {MIN_MEDIAN_MARGIN}"
    if not m["count"]:
        return _check("margins", None, "no DPO pairs with rewards", threshold)
    median = m["quantiles"]["p50"]
    detail = f"median margin {num(median)}, min {num(m['min'])}, max {num(m['max'])}"
    return _check("margins", median < MIN_MEDIAN_MARGIN, detail, threshold)


def check_validation(d: ReportData) -> Check:
    threshold = "a non-empty validation split"
    if not (d.splits or set(d.split_names()) - {UNSPLIT}):
        return _check("validation", None, "the rows are not split", threshold)
    sft, dpo = d.sft.rows_by_split["validation"], d.dpo.pairs_by_split["validation"]
    empty = [
        kind
        for kind, total, held in (("SFT", d.sft.rows, sft), ("DPO", d.dpo.pairs, dpo))
        if total and not held
    ]
    held = f"{count(sft)} SFT rows, {count(dpo)} DPO pairs"
    detail = f"{' and '.join(empty)} validation split empty" if empty else held
    return _check("validation", bool(empty), detail, threshold)


def check_leakage(d: ReportData) -> Check:
    threshold = "0 prompts in both train and validation"
    names = set(d.split_names())
    if not {"train", "validation"} <= names:
        return _check("leakage", None, "no train and validation splits", threshold)
    detail = f"{count(d.shared_prompts)} prompts in both splits"
    return _check("leakage", d.shared_prompts > 0, detail, threshold)


def check_truncation(d: ReportData) -> Check:
    s = d.sft
    threshold = f"≤ {MAX_TRUNCATED_SHARE:.0%} of rollouts cut off"
    if not s.truncation_known:
        return _check("truncation", None, "released rows do not record it", threshold)
    rate = share(s.truncated, s.truncation_known)
    detail = f"{count(s.truncated)} of {count(s.truncation_known)} rollouts cut off by max_output_tokens ({pct(rate)})"
    return _check("truncation", rate > MAX_TRUNCATED_SHARE, detail, threshold)


def check_template(d: ReportData) -> Check:
    threshold = "0 rows the chat template cannot render"
    if d.tokens.method != "chat_template":
        return _check("template", None, "no tokenizer with a chat template given", threshold)
    errors = d.tokens.template_errors
    return _check("template", errors > 0, f"{count(errors)} rows failed to render", threshold)


def manifest_mismatches(d: ReportData) -> list[str]:
    """Row counts the manifest states that differ from the rows counted."""
    acc: dict[str, Any] = (d.accounting or {}) if d.manifest is not None else {}
    found = []
    for kind, counted, noun in (
        ("sft", d.sft.rows_by_split, "SFT rows"),
        ("dpo", d.dpo.pairs_by_split, "DPO pairs"),
    ):
        part = acc.get(kind)
        if not isinstance(part, dict):
            continue
        # Split counts as the brief's manifest states them (train/validation keys) or as a "splits" dict.
        stated = {**(part.get("splits") or {}), **{k: part[k] for k in ("train", "validation") if k in part}}
        for split in ("train", "validation"):
            if isinstance(stated.get(split), int) and stated[split] != counted[split]:
                found.append(
                    f"{split}: manifest {count(stated[split])} {noun}, files {count(counted[split])}"
                )
    return found


def check_manifest(d: ReportData) -> Check:
    threshold = "the manifest's row counts equal the files'"
    if d.manifest is None:
        return _check("manifest", None, "no manifest", threshold)
    wrong = manifest_mismatches(d)
    return _check("manifest", bool(wrong), "; ".join(wrong) or "row counts agree", threshold)


# The tutorial's four checks first, then what this report adds.
CHECKS: list[Callable[[ReportData], Check]] = [
    check_size, check_rewards, check_length, check_diversity, check_tool_use, check_duplicates,
    check_margins, check_validation, check_leakage, check_truncation, check_template, check_manifest,
]  # fmt: skip


def evaluate(data: ReportData) -> list[Check]:
    return [check(data) for check in CHECKS]
