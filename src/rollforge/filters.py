"""Quality filters. Each is a (reason, keep?) pair; a dropped rollout is counted under the first reason that
drops it, in the order below, so the accounting always adds up.

Per-rollout filters run where the rollout is read (in any worker). Filters that need every rollout first
(``--min-task-success-rate``, ``--dedup``, ``--balance-by``) run afterwards over the compact index; see
``rollforge.engine.select``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rollforge.rollout import Rollout
from rollforge.success import Success
from rollforge.where import Where

Check = tuple[str, Callable[[Rollout], bool]]  # (reason when it fails, predicate that keeps)


@dataclass(frozen=True)
class FilterOptions:
    """Every quality filter, off unless set. Field names are the CLI flags and the recipe keys."""

    min_reward: float | None = None
    max_reward: float | None = None
    success: Success = field(default_factory=Success)
    success_only: bool = False
    min_task_success_rate: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    min_turns: int | None = None
    max_turns: int | None = None
    require_tool_use: bool = False
    drop_truncated: bool = True
    max_tokens: int | None = None
    tokenizer: str | None = None
    where: Where | None = None
    dedup: str | None = None  # None | "exact" | "near"
    near_threshold: float = 0.9
    labels: str | None = None  # a review database: rollouts labelled `reject` are dropped

    @property
    def fields(self) -> tuple[str, ...]:
        """Top-level fields the decoder must keep for these filters."""
        roots = set(self.success.fields)
        if self.where is not None:
            roots |= self.where.roots
        return tuple(sorted(roots))


def build_checks(opts: FilterOptions) -> list[Check]:
    """The enabled per-rollout filters, cheapest first (the tokenizer last: it is the slow one)."""
    checks: list[Check] = [("no_assistant_turn", lambda r: r.assistant_turns > 0)]
    if opts.labels is not None:
        rejected = review_rejected(opts.labels)
        checks.append(("review_rejected", lambda r: r.rollout_id not in rejected))
    if opts.drop_truncated:
        checks.append(("truncated", lambda r: not r.truncated))
    if opts.min_reward is not None:
        checks.append(("below_min_reward", lambda r, v=opts.min_reward: r.reward >= v))
    if opts.max_reward is not None:
        checks.append(("above_max_reward", lambda r, v=opts.max_reward: r.reward <= v))
    if opts.success_only:
        checks.append(("not_success", opts.success))
    checks += _bounds("items", lambda r: r.n_items, opts.min_items, opts.max_items)
    checks += _bounds("turns", lambda r: r.assistant_turns, opts.min_turns, opts.max_turns)
    if opts.require_tool_use:
        checks.append(("no_tool_use", lambda r: r.uses_tools))
    if opts.where is not None:
        checks.append(("where_false", opts.where))
    if opts.max_tokens is not None:
        count = token_counter(opts.tokenizer)
        checks.append(("too_many_tokens", lambda r, v=opts.max_tokens: count(r) <= v))
    return checks


def _bounds(name: str, measure: Callable[[Rollout], int], low: int | None, high: int | None) -> list[Check]:
    out: list[Check] = []
    if low is not None:
        out.append((f"too_few_{name}", lambda r: measure(r) >= low))
    if high is not None:
        out.append((f"too_many_{name}", lambda r: measure(r) <= high))
    return out


def first_failure(checks: list[Check], rollout: Rollout) -> str | None:
    for reason, keep in checks:
        if not keep(rollout):
            return reason
    return None


@lru_cache(maxsize=2)
def review_rejected(db_path: str) -> frozenset[str]:
    """Rollout ids whose current review label is `reject` (loaded once per process)."""
    from rollforge.review.db import rejected_ids

    return frozenset(rejected_ids(db_path))


@lru_cache(maxsize=2)
def token_counter(tokenizer: str | None) -> Callable[[Rollout], int]:
    """Length of the rendered chat template in real tokens (loaded once per process)."""
    from rollforge.tokens import load_tokenizer, render_length

    tok = load_tokenizer(tokenizer)
    return lambda r: render_length(tok, r.messages, r.tools)


def describe(opts: FilterOptions) -> dict[str, Any]:
    """The options as plain JSON (for manifests and --json)."""
    out: dict[str, Any] = {}
    for name in FilterOptions.__dataclass_fields__:
        value = getattr(opts, name)
        if isinstance(value, Success):
            value = {"threshold": value.threshold, "field": value.field}
        elif isinstance(value, Where):
            value = value.source
        out[name] = value
    return out
