"""The checklist's thresholds: one default each, with what it means. A recipe's ``checks:`` map sets any of
them (``checks: {min_sft_rows: 200, max_task_share: 0.6}``); a release's report reads them back from its
manifest, so ``rollforge report releases/v1`` judges as the build did."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from rollforge.errors import RollforgeError

DEFAULTS: dict[str, tuple[float, str]] = {
    "min_sft_rows": (1000, "fewer SFT rows than this is small for fine-tuning"),
    "min_dpo_pairs": (500, "fewer DPO pairs than this is small for preference tuning"),
    "min_sample": (30, "rows (or pairs, rollouts) a share-based check needs before it can pass"),
    "max_over_length_share": (0.01, "rows over --max-tokens get truncated (answer lost) or dropped"),
    "max_task_share": (0.50, "one task type above this share dominates what the model learns"),
    "max_unknown_task_share": (0.20, "rows in a catch-all task type (general, unknown) above this share"),
    "min_tool_use_rate": (0.50, "of rows that declare tools, at least this share should call one"),
    "max_duplicate_share": (0.05, "repeated answers above this share overweight a few examples"),
    "min_median_margin": (0.2, "DPO pairs whose rewards barely differ carry little preference signal"),
    "max_truncated_share": (0.05, "rollouts cut off by max_output_tokens teach unfinished answers"),
    "max_chosen_longer_share": (
        0.70,
        "chosen longer than rejected in more pairs than this: DPO learns length",
    ),
    "max_one_sided_reasoning_share": (
        0.10,
        "pairs with reasoning on one side only: DPO learns to (not) reason",
    ),
}

# A task type that names no task: rows filed under it are counted as of unknown type for diversity.
CATCH_ALL_TASK_TYPES = frozenset({"general", "unknown", "other", "default", "misc", "none", "null", ""})


def thresholds(given: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Every threshold: the defaults, with ``given`` (a recipe's ``checks:``) over them, checked."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], DEFAULTS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(DEFAULTS)
        raise RollforgeError(f"checks: unknown threshold {unknown[0]!r}", hint=hint)
    out = {name: float(default) for name, (default, _) in DEFAULTS.items()}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise RollforgeError(f"checks: {name} must be a number >= 0 (got {value!r})")
        out[name] = float(value)
    return out
