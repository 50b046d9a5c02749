"""Checks for known DPO and reward traps, judged on what a release holds:

- length bias: when the chosen side is longer in most pairs, DPO learns "longer is better" rather than what
  the reward measured (Park et al. 2024, "Disentangling length from quality in DPO");
- reasoning on one side only: the pair teaches whether to reason, not how well;
- mixed reward scales: a 0..1 verifier beside an environment scoring -2..10 makes one --min-reward,
  --success-threshold or --min-margin mean different things per environment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rollforge.report.data import Check, ReportData
from rollforge.report.fmt import count, num, pct
from rollforge.report.metrics import share
from rollforge.report.verdicts import sampled_verdict, verdict


def check_length_bias(d: ReportData) -> Check:
    limit = d.thresholds["max_chosen_longer_share"]
    return _pair_share(d, "length_bias", d.dpo.chosen_longer, limit,
                       f"chosen longer than rejected in ≤ {limit:.0%} of pairs",
                       lambda n, of, rate: f"chosen longer in {n} of {of} pairs ({rate})")  # fmt: skip


def check_reasoning_sides(d: ReportData) -> Check:
    limit = d.thresholds["max_one_sided_reasoning_share"]
    return _pair_share(d, "reasoning_sides", d.dpo.one_sided_reasoning, limit,
                       f"≤ {limit:.0%} of pairs with reasoning on one side only",
                       lambda n, of, rate: f"{n} of {of} pairs reason on one side only ({rate})")  # fmt: skip


def _pair_share(
    d: ReportData, name: str, hits: int, limit: float, threshold: str, detail: Callable[[str, str, str], str]
) -> Check:
    """A check that warns when more than ``limit`` of the DPO pairs are ``hits`` (and has no verdict on too few)."""
    pairs = d.dpo.pairs
    if not pairs:
        return verdict(name, None, "no DPO pairs", threshold)
    rate = share(hits, pairs)
    text = detail(count(hits), count(pairs), pct(rate))
    return sampled_verdict(d, name, rate > limit, text, threshold, pairs, "pairs")


def check_reward_scales(d: ReportData) -> Check:
    """Groups (the release's input files, from its manifest; else the rows' task types) whose rewards all
    lie in 0..1 beside groups with rewards outside it. Pairs whose chosen reward is not above the rejected
    one (a file not made by rollforge) warn too."""
    threshold = "one reward scale across inputs; every pair's chosen reward above its rejected"
    groups, noun = _file_ranges(d.manifest), "input files"
    if not groups:
        groups, noun = _task_ranges(d), "task types"
    if not groups and not d.dpo.pairs:
        return verdict("rewards", None, "no rewards", threshold)
    unit = sorted(g for g, (low, high) in groups.items() if low >= 0.0 and high <= 1.0)
    other = {g: r for g, r in groups.items() if g not in unit}
    parts, warn = [], False
    if unit and other:
        warn = True
        shown = ", ".join(f"{g} {num(low)}..{num(high)}" for g, (low, high) in sorted(other.items())[:3])
        more = f" and {len(other) - 3} more" * (len(other) > 3)
        parts.append(
            f"mixed scales: {len(unit)} {noun} reward within 0..1, {len(other)} outside ({shown}{more}); "
            "normalise per environment before one threshold or margin applies to all"
        )
    elif groups:
        low = min(r[0] for r in groups.values())
        high = max(r[1] for r in groups.values())
        parts.append(f"one scale over {len(groups)} {noun}: rewards {num(low)}..{num(high)}")
    if d.dpo.not_preferred:
        warn = True
        parts.append(f"{count(d.dpo.not_preferred)} pairs whose chosen reward is not above the rejected one")
    return verdict("rewards", warn, "; ".join(parts) or f"{count(d.dpo.pairs)} pairs", threshold)


def _file_ranges(manifest: dict[str, Any] | None) -> dict[str, tuple[float, float]]:
    """Input file name -> (min, max) reward, from a release manifest's inventory (files with rollouts)."""
    per_file = ((manifest or {}).get("inventory") or {}).get("per_file") or {}
    out = {}
    for path, row in per_file.items():
        reward = (row or {}).get("reward") or {}
        if isinstance(reward.get("min"), int | float) and isinstance(reward.get("max"), int | float):
            out[path.rsplit("/", 1)[-1]] = (float(reward["min"]), float(reward["max"]))
    return out


def _task_ranges(d: ReportData) -> dict[str, tuple[float, float]]:
    return {repr(task): (low, high) for task, (low, high) in d.sft.reward_ranges().items()}
