"""Quality filters. Each is a (reason, keep?) pair; a dropped rollout is counted under the first reason that
drops it, in the order below, so the accounting always adds up.

Per-rollout filters run where the rollout is read (in any worker). Filters that need every rollout first
(``--min-task-success-rate``, ``--dedup``, ``--balance-by``) run afterwards over the compact index; see
``rollforge.engine.select``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rollforge.rollout import Rollout
from rollforge.success import Success
from rollforge.where import Where

Check = tuple[str, Callable[[Any], bool]]  # (reason when it fails, predicate that keeps)


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


def build_checks(opts: FilterOptions, full: bool = True) -> list[Check]:
    """The enabled per-rollout filters, cheapest first (the tokenizer last: it is the slow one).

    They read what a :class:`Rollout` and a :class:`rollforge.rollout.Head` both have; turn filters use
    the bounds of the turn count so that a Head only ever drops what the full rollout would drop.
    ``full=False`` leaves out the filters that need the conversation's text.
    """
    checks: list[Check] = [("no_assistant_turn", _at_least(_turns_high, 1))]
    if opts.labels is not None:
        rejected = review_rejected(opts.labels, _mtime(opts.labels))
        checks.append(("review_rejected", lambda r: r.rollout_id not in rejected))
    if opts.drop_truncated:
        checks.append(("truncated", lambda r: not r.truncated))
    if opts.min_reward is not None:
        checks.append(("below_min_reward", _at_least(_reward, opts.min_reward)))
    if opts.max_reward is not None:
        checks.append(("above_max_reward", _at_most(_reward, opts.max_reward)))
    if opts.success_only:
        checks.append(("not_success", opts.success))
    if opts.min_items is not None:
        checks.append(("too_few_items", _at_least(_items, opts.min_items)))
    if opts.max_items is not None:
        checks.append(("too_many_items", _at_most(_items, opts.max_items)))
    if opts.min_turns is not None:  # a Head knows a range of turns: compare with the bound that is safe
        checks.append(("too_few_turns", _at_least(_turns_high, opts.min_turns)))
    if opts.max_turns is not None:
        checks.append(("too_many_turns", _at_most(_turns_low, opts.max_turns)))
    if opts.require_tool_use:
        checks.append(("no_tool_use", lambda r: r.uses_tools))
    if opts.where is not None and (full or "prompt_id" not in opts.where.roots):  # a Head has no prompt_id
        checks.append(("where_false", opts.where))
    if opts.max_tokens is not None and full:
        checks.append(("too_many_tokens", _at_most(token_counter(opts.tokenizer), opts.max_tokens)))
    return checks


def _reward(r: Any) -> float:
    return float(r.reward)


def _items(r: Any) -> int:
    return int(r.n_items)


def _turns_high(r: Any) -> int:
    return int(r.turns_at_most)


def _turns_low(r: Any) -> int:
    return int(r.turns_at_least)


def _at_least(measure: Callable[[Any], float], bound: float) -> Callable[[Any], bool]:
    return lambda r: measure(r) >= bound


def _at_most(measure: Callable[[Any], float], bound: float) -> Callable[[Any], bool]:
    return lambda r: measure(r) <= bound


def certain_failure(checks: list[Check], head: Any) -> str | None:
    """For a Head: the first check it fails whatever its exact turn count, provided it passes every earlier
    check whatever that count. None when it passes them all, or when only the conversion can tell."""
    if head.turns_at_least == head.turns_at_most:  # the usual case: the count is exact
        return first_failure(checks, head)
    low, high = head.with_turns(head.turns_at_least), head.with_turns(head.turns_at_most)
    for reason, keep in checks:
        at_low, at_high = keep(low), keep(high)
        if at_low and at_high:
            continue
        return reason if not (at_low or at_high) else None
    return None


def first_failure(checks: list[Check], rollout: Any) -> str | None:
    for reason, keep in checks:
        if not keep(rollout):
            return reason
    return None


def _mtime(path: str) -> float:
    """When the database last changed (in WAL mode new labels land in the -wal file first)."""
    times = [os.stat(p).st_mtime for p in (path, path + "-wal") if os.path.exists(p)]
    return max(times, default=0.0)  # a missing path: rejected_ids says clearly what is wrong


@lru_cache(maxsize=2)
def review_rejected(db_path: str, mtime: float = 0.0) -> frozenset[str]:
    """Rollout ids whose current review label is `reject` (loaded once per process and database state)."""
    from rollforge.labels import rejected_ids

    return frozenset(rejected_ids(db_path))


@lru_cache(maxsize=2)
def token_counter(tokenizer: str | None) -> Callable[[Rollout], int]:
    """Length of the rendered chat template in real tokens (loaded once per process)."""
    from rollforge.tokens import load_tokenizer, render_length

    tok = load_tokenizer(tokenizer)
    return lambda r: render_length(tok, r.messages, r.tools)


def filter_options(values: dict[str, Any]) -> FilterOptions:
    """FilterOptions from CLI flags (``vars(args)``) or a recipe (``model_dump()``): the same key names,
    except the review database, ``labels`` on the command line and ``review_db`` in a recipe."""
    if values.get("max_tokens") is not None and not values.get("tokenizer"):
        from rollforge.errors import RollforgeError

        raise RollforgeError(
            "--max-tokens needs --tokenizer", hint="pass a local tokenizer directory or hub id"
        )
    where = values.get("where")
    return FilterOptions(
        min_reward=values.get("min_reward"),
        max_reward=values.get("max_reward"),
        success=Success(threshold=values.get("success_threshold", 1.0), field=values.get("success_field")),
        success_only=bool(values.get("success_only")),
        min_task_success_rate=values.get("min_task_success_rate"),
        min_items=values.get("min_items"),
        max_items=values.get("max_items"),
        min_turns=values.get("min_turns"),
        max_turns=values.get("max_turns"),
        require_tool_use=bool(values.get("require_tool_use")),
        drop_truncated=values.get("drop_truncated", True),
        max_tokens=values.get("max_tokens"),
        tokenizer=values.get("tokenizer"),
        where=Where(where) if where else None,
        dedup=values.get("dedup"),
        near_threshold=values.get("near_threshold", 0.9),
        labels=values.get("labels") or values.get("review_db"),
    )
