"""The pre-training checklist: each item judged against a threshold a practitioner would set.

The thresholds live in ``rollforge.report.thresholds`` (a recipe's ``checks:`` map changes any of them);
each check's text states the one it applied. No check holds by construction: a share-based check needs
``min_sample`` rows before it can pass ("not enough data" warns), and the DPO traps (length bias,
reasoning on one side only, mixed reward scales) are judged on the released pairs and inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rollforge.report.data import Check, ReportData
from rollforge.report.fmt import count, num, pct
from rollforge.report.metrics import UNSPLIT, describe, share
from rollforge.report.thresholds import CATCH_ALL_TASK_TYPES, DEFAULTS
from rollforge.report.verdicts import sampled_verdict, verdict

# The defaults, by their historical names (a recipe's checks: map overrides them per report).
MIN_SFT_ROWS = int(DEFAULTS["min_sft_rows"][0])
MIN_DPO_PAIRS = int(DEFAULTS["min_dpo_pairs"][0])
MAX_OVER_LENGTH_SHARE = DEFAULTS["max_over_length_share"][0]
MAX_TASK_SHARE = DEFAULTS["max_task_share"][0]
MIN_TOOL_USE_RATE = DEFAULTS["min_tool_use_rate"][0]
MAX_DUPLICATE_SHARE = DEFAULTS["max_duplicate_share"][0]
MIN_MEDIAN_MARGIN = DEFAULTS["min_median_margin"][0]
MAX_TRUNCATED_SHARE = DEFAULTS["max_truncated_share"][0]


def check_size(d: ReportData) -> Check:
    sft, dpo = d.sft.rows, d.dpo.pairs
    parts = [f"{count(sft)} SFT rows"] * bool(sft) + [f"{count(dpo)} DPO pairs"] * bool(dpo)
    min_rows, min_pairs = int(d.thresholds["min_sft_rows"]), int(d.thresholds["min_dpo_pairs"])
    small = (sft and sft < min_rows) or (dpo and dpo < min_pairs) or not (sft or dpo)
    detail = ", ".join(parts) or "no rows"
    if small and (sft or dpo):
        detail += ": small for fine-tuning"
    threshold = f"SFT ≥ {min_rows:,} rows, DPO ≥ {min_pairs:,} pairs"
    return verdict("size", bool(small), detail, threshold)


def check_length(d: ReportData) -> Check:
    limit = d.tokens.max_tokens
    source = describe(d.sft.tokens if d.sft.rows else d.dpo.chosen_tokens)
    rows = d.sft.rows + d.dpo.pairs
    over = d.sft.over_max + d.dpo.over_max
    estimated = " (estimated)" if d.tokens.method == "estimate" else ""
    detail = "no rows"
    if source["count"]:
        detail = f"median {num(source['quantiles']['p50'])} tokens{estimated}, max {num(source['max'])}"
    limit_share = d.thresholds["max_over_length_share"]
    threshold = f"≤ {limit_share:.0%} of rows over --max-tokens"
    if limit is None or not rows:
        return verdict("length", None, detail + "; no --max-tokens given" * bool(rows), threshold)
    parts = []
    if d.sft.rows:
        parts.append(f"{count(d.sft.over_max)} of {count(d.sft.rows)} SFT rows")
    if d.dpo.pairs:
        parts.append(f"{count(d.dpo.over_max)} of {count(d.dpo.pairs)} DPO pairs")
    detail += f"; {' and '.join(parts)} ({pct(share(over, rows))}) over {count(limit)}"
    return verdict("length", share(over, rows) > limit_share, detail, threshold)


def check_diversity(d: ReportData) -> Check:
    """A catch-all task type (``general``) names no task: its rows count as of unknown type, and too many
    of them warn however the named types are spread."""
    t = d.thresholds
    threshold = f"largest task type ≤ {t['max_task_share']:.0%} of rows, catch-all ≤ {t['max_unknown_task_share']:.0%}"
    counts = d.task_types
    if not counts:
        return verdict("diversity", None, "no task types", threshold)
    total = sum(counts.values())
    unknown = {k: v for k, v in counts.items() if k.strip().lower() in CATCH_ALL_TASK_TYPES}
    known = {k: v for k, v in counts.items() if k not in unknown}
    unknown_share = share(sum(unknown.values()), total)
    parts = [f"{len(known)} named task types"]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        parts.append(f"{pct(unknown_share)} of rows in catch-all {names} (unknown type)")
    top = max(known.values()) / total if known else 0.0
    if known:
        name = max(known, key=lambda k: known[k])
        parts.append(f"largest {name!r} {pct(top)}")
    warn = unknown_share > t["max_unknown_task_share"] or top > t["max_task_share"] or not known
    return sampled_verdict(d, "diversity", warn, ", ".join(parts), threshold, total, "rows")


def check_tool_use(d: ReportData) -> Check:
    s = d.sft
    threshold = f"≥ {d.thresholds['min_tool_use_rate']:.0%} of rows that declare tools call one"
    if not s.declared_rows:
        return verdict("tool_use", None, "no SFT row declares tools", threshold)
    rate = share(s.declared_tool_rows, s.declared_rows)
    detail = f"{count(s.declared_tool_rows)} of {count(s.declared_rows)} rows that declare tools call one ({pct(rate)})"
    warn = rate < d.thresholds["min_tool_use_rate"]
    return sampled_verdict(d, "tool_use", warn, detail, threshold, s.declared_rows, "rows declare tools")


def check_duplicates(d: ReportData) -> Check:
    s = d.sft
    threshold = f"≤ {d.thresholds['max_duplicate_share']:.0%} of SFT rows"
    if not s.rows:
        return verdict("duplicates", None, "no SFT rows", threshold)
    rate = share(s.duplicates, s.rows)
    detail = f"{count(s.duplicates)} SFT rows repeat an earlier row's assistant text ({pct(rate)})"
    warn = rate > d.thresholds["max_duplicate_share"]
    return sampled_verdict(d, "duplicates", warn, detail, threshold, s.rows, "SFT rows")


def check_margins(d: ReportData) -> Check:
    m = describe(d.dpo.margins)
    threshold = f"median margin ≥ {num(d.thresholds['min_median_margin'])}"
    if not m["count"]:
        return verdict("margins", None, "no DPO pairs with rewards", threshold)
    median = m["quantiles"]["p50"]
    detail = f"median margin {num(median)}, min {num(m['min'])}, max {num(m['max'])}"
    warn = median < d.thresholds["min_median_margin"]
    return sampled_verdict(d, "margins", warn, detail, threshold, m["count"], "pairs")


def check_validation(d: ReportData) -> Check:
    threshold = "a non-empty validation split"
    if not (d.splits or set(d.split_names()) - {UNSPLIT}):
        return verdict("validation", None, "the rows are not split", threshold)
    sft, dpo = d.sft.rows_by_split["validation"], d.dpo.pairs_by_split["validation"]
    empty = [
        kind
        for kind, total, held in (("SFT", d.sft.rows, sft), ("DPO", d.dpo.pairs, dpo))
        if total and not held
    ]
    held = f"{count(sft)} SFT rows, {count(dpo)} DPO pairs"
    detail = f"{' and '.join(empty)} validation split empty" if empty else held
    return verdict("validation", bool(empty), detail, threshold)


def check_leakage(d: ReportData) -> Check:
    threshold = "0 user questions in both train and validation"
    names = set(d.split_names())
    if not {"train", "validation"} <= names:
        return verdict("leakage", None, "no train and validation splits", threshold)
    # Compared by the user's text, not by prompt id (a release splits by prompt id, so ids never overlap):
    # the same question under another system prompt or tool list leaks all the same.
    detail = (
        f"{count(d.shared_prompts)} user questions in both splits (same text, any system prompt or tools)"
    )
    return verdict("leakage", d.shared_prompts > 0, detail, threshold)


def check_truncation(d: ReportData) -> Check:
    """Cut-off rollouts in the rows, where the rows say; else in the release's manifest: the rollouts
    read that were cut off, dropped (``drop_truncated``, the default) or kept."""
    s = d.sft
    limit = d.thresholds["max_truncated_share"]
    threshold = f"≤ {limit:.0%} of rollouts cut off"
    if s.truncation_known:
        rate = share(s.truncated, s.truncation_known)
        detail = f"{count(s.truncated)} of {count(s.truncation_known)} rollouts cut off by max_output_tokens ({pct(rate)})"
        return sampled_verdict(
            d, "truncation", rate > limit, detail, threshold, s.truncation_known, "rollouts"
        )
    read = _manifest_truncation(d.manifest)
    if read is None:
        return verdict(
            "truncation", None, "released rows do not record it, and there is no manifest", threshold
        )
    cut, rollouts, dropped = read
    if dropped:
        detail = f"none in the release: {count(cut)} of {count(rollouts)} rollouts read were cut off and dropped (manifest)"
        return verdict("truncation", False, detail, threshold)
    rate = share(cut, rollouts)
    detail = f"{count(cut)} of {count(rollouts)} rollouts read were cut off and kept, drop_truncated: false ({pct(rate)}, manifest)"
    return sampled_verdict(d, "truncation", rate > limit, detail, threshold, rollouts, "rollouts")


def _manifest_truncation(manifest: dict[str, Any] | None) -> tuple[int, int, bool] | None:
    """(cut-off rollouts read, rollouts read, whether the build dropped them) from a release's manifest."""
    if not isinstance(manifest, dict):
        return None
    recipe, acc = manifest.get("recipe") or {}, manifest.get("accounting") or {}
    inventory = manifest.get("inventory") or {}
    if not isinstance(acc.get("rollouts"), int):
        return None
    dropped = bool(recipe.get("drop_truncated", True))
    filtered = ((acc.get("sft") or {}).get("filtered") or {}).get("truncated", 0)
    cut = max(
        int(inventory.get("truncated") or 0), int(filtered or 0)
    )  # dropped on a first look: not converted
    return cut, acc["rollouts"], dropped


def check_template(d: ReportData) -> Check:
    threshold = "0 rows the chat template cannot render"
    if d.tokens.method != "chat_template":
        return verdict("template", None, "no tokenizer with a chat template given", threshold)
    errors = d.tokens.template_errors
    return verdict("template", errors > 0, f"{count(errors)} rows failed to render", threshold)


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
        return verdict("manifest", None, "no manifest", threshold)
    wrong = manifest_mismatches(d)
    return verdict("manifest", bool(wrong), "; ".join(wrong) or "row counts agree", threshold)


def evaluate(data: ReportData) -> list[Check]:
    from rollforge.report.traps import check_length_bias, check_reasoning_sides, check_reward_scales

    # The tutorial's four checks first, then what this report adds.
    checks: list[Callable[[ReportData], Check]] = [
        check_size, check_reward_scales, check_length, check_diversity, check_tool_use, check_duplicates,
        check_margins, check_length_bias, check_reasoning_sides, check_validation, check_leakage,
        check_truncation, check_template, check_manifest,
    ]  # fmt: skip
    return [check(data) for check in checks]
