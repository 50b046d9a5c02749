"""Decisions that need every rollout first, made over the compact index (no rollout text in memory):
the per-prompt success rate, duplicates, per-category caps, and DPO pairing."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from rollforge.engine.index import RowIndex
from rollforge.engine.job import Job
from rollforge.engine.worker import REASON_CODES, REASON_NAMES
from rollforge.pairs import Candidate, Pair, pair_group


@dataclass
class SftSelection:
    keep: list[bool]
    filtered: Counter = field(default_factory=Counter)  # reason -> rollouts dropped


def select_sft(
    index: RowIndex, job: Job, max_per_category: int | None = None, dropped_early: Counter | None = None
) -> SftSelection:
    """Which rollouts become SFT rows; every other valid rollout is counted under one filter reason
    (``dropped_early``: the rollouts filters dropped before conversion, already counted by reason)."""
    reasons = [REASON_NAMES.get(code) for code in index.reason]
    _task_success_rate(index, job, reasons)
    if job.filters.dedup == "exact":
        _exact_dedup(index, reasons)
    elif job.filters.dedup == "near":
        from rollforge.dedup import near_dedup

        near_dedup(index.minhash, reasons, job.filters.near_threshold)
    if job.balance_by and max_per_category is not None:
        _cap_categories(index, reasons, max_per_category)
    filtered = Counter(r for r in reasons if r is not None) + (dropped_early or Counter())
    return SftSelection(keep=[r is None for r in reasons], filtered=filtered)


def _task_success_rate(index: RowIndex, job: Job, reasons: list[str | None]) -> None:
    rate = job.filters.min_task_success_rate
    if rate is None:
        return
    total: Counter = Counter(index.prompt)
    wins: Counter = Counter(p for p, s in zip(index.prompt, index.success, strict=True) if s)
    for row, prompt in enumerate(index.prompt):
        if reasons[row] is None and wins[prompt] / total[prompt] < rate:
            reasons[row] = "low_task_success_rate"


def _exact_dedup(index: RowIndex, reasons: list[str | None]) -> None:
    seen: set[int] = set()
    for row, digest in enumerate(index.full):
        if reasons[row] is None:
            if digest in seen:
                reasons[row] = "duplicate"
            seen.add(digest)


def _cap_categories(index: RowIndex, reasons: list[str | None], cap: int) -> None:
    """A seeded random `cap` rollouts per category: the smallest seeded keys, not the first N."""
    members: dict[str, list[int]] = defaultdict(list)
    for row, category in enumerate(index.category):
        if reasons[row] is None:
            members[category].append(row)
    for rows in members.values():
        rows.sort(key=lambda row: index.key[row])
        for row in rows[cap:]:
            reasons[row] = "over_category_cap"


@dataclass
class DpoSelection:
    pairs: list[Pair]
    prompts: int = 0
    unpaired: Counter = field(default_factory=Counter)  # reason -> prompts without a pair
    not_chosen: Counter = field(
        default_factory=Counter
    )  # reason -> rollouts the filters bar from being chosen


def ineligible(index: RowIndex, job: Job) -> Counter:
    """Rollouts a quality filter bars from the chosen side, by reason (they may still be rejected sides)."""
    reasons = [REASON_NAMES.get(code) for code in index.reason]
    _task_success_rate(index, job, reasons)
    return Counter(r for r in reasons if r is not None)


def group_candidates(index: RowIndex, job: Job) -> tuple[dict[int, list[Candidate]], int]:
    """Every valid rollout with an assistant turn, grouped by prompt in order of first appearance; and the
    number of prompts left with no such rollout."""
    reasons = [REASON_NAMES.get(code) for code in index.reason]
    _task_success_rate(index, job, reasons)
    no_turn = REASON_CODES["no_assistant_turn"]
    groups: dict[int, list[Candidate]] = {}
    for row in range(len(index)):
        if index.reason[row] == no_turn:
            continue  # nothing to compare: not even a rejected side
        candidate = Candidate(
            row=row,
            reward=index.reward[row],
            eligible=reasons[row] is None,
            trajectory=index.trajectory[row],
            key=index.key[row],
        )
        groups.setdefault(index.prompt[row], []).append(candidate)
    return groups, len(set(index.prompt)) - len(groups)


def first_appearance_order(pairs: list[Pair], index: RowIndex) -> list[Pair]:
    """Pairs ordered by where their prompt's first candidate (a rollout with an assistant turn) appears in
    the input, as ``group_candidates`` orders the groups; stable within a prompt."""
    no_turn = REASON_CODES["no_assistant_turn"]
    first: dict[int, int] = {}
    for row, prompt in enumerate(index.prompt):
        if index.reason[row] != no_turn:
            first.setdefault(prompt, row)
    return sorted(pairs, key=lambda pair: first[index.prompt[pair[0].row]])


def select_dpo(
    index: RowIndex, job: Job, strategy: str, min_margin: float, max_pairs: int | None = None
) -> DpoSelection:
    """Group every valid rollout by prompt and pair inside each group, in order of first appearance."""
    groups, missing = group_candidates(index, job)
    result = DpoSelection(pairs=[], prompts=len(set(index.prompt)))
    result.unpaired["no_assistant_turn"] = missing
    for group in groups.values():
        pairs, reason = pair_group(group, strategy, min_margin, max_pairs)
        result.pairs += pairs
        if reason:
            result.unpaired[reason] += 1
    result.unpaired += Counter()  # drops zero counts
    return result
