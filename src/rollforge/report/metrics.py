"""The numbers of a report, accumulated one row at a time.

Memory is a few numbers per row (reward, lengths, an 8-byte answer hash) plus one entry per prompt, never
the rows themselves, so a report over millions of rows fits in a few hundred MB.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from rollforge.report import rows as R
from rollforge.stats import reward_stats

UNSPLIT = "all"  # the split of rows that were not read from a named split


def describe(values: array | list[float]) -> dict[str, Any]:
    """count, min, max, mean, std and p10..p90 quantiles (the same statistics ``rollforge inspect`` shows)."""
    stats = reward_stats(values)
    stats.pop("values", None)
    return stats


def normalised_entropy(counts: Mapping[str, int]) -> float:
    """Shannon entropy of the shares divided by its maximum, ln(k): 1.0 is perfectly balanced over k kinds.

    With fewer than two kinds there is no balance to speak of: 0.0.
    """
    total = sum(counts.values())
    kinds = [c for c in counts.values() if c > 0]
    if len(kinds) < 2:
        return 0.0
    return -sum(c / total * math.log(c / total) for c in kinds) / math.log(len(kinds))


def share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _reward(value: Any) -> float | None:
    """A finite reward or margin; None for anything else (an integer past float range included)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def merge_parts(part: Any, other: Any) -> None:
    """Add ``other``'s rows to ``part`` (same class), field by field: counts and counters add up, per-row
    arrays extend, so ``other``'s rows come after ``part``'s as if one part had read them all."""
    for f in fields(part):
        mine, theirs = getattr(part, f.name), getattr(other, f.name)
        if isinstance(mine, Counter):
            mine.update(theirs)
        elif isinstance(mine, dict):  # ranges: [lowest, highest] by key
            for key, (low, high) in theirs.items():
                _widen(mine, key, low, high)
        elif isinstance(mine, array):
            mine.extend(theirs)
        else:
            assert isinstance(mine, int), f"{f.name}: a count, a Counter or an array"
            setattr(part, f.name, mine + theirs)


def _widen(ranges: dict[str, list[float]], key: str, low: float, high: float) -> None:
    seen = ranges.setdefault(key, [low, high])
    seen[0], seen[1] = min(seen[0], low), max(seen[1], high)


@dataclass
class SftPart:
    """SFT rows (or rollouts read as SFT-shaped rows)."""

    rows_by_split: Counter = field(default_factory=Counter)
    rewards: array = field(default_factory=lambda: array("d"))
    messages: array = field(default_factory=lambda: array("l"))
    turns: array = field(default_factory=lambda: array("l"))
    tokens: array = field(default_factory=lambda: array("l"))
    digests: array = field(default_factory=lambda: array("Q"))
    task_types: Counter = field(default_factory=Counter)
    tool_rows: int = 0  # rows with at least one tool call
    declared_rows: int = 0  # rows that declare tools
    declared_tool_rows: int = 0  # rows that declare tools and call one
    reasoning_rows: int = 0
    over_max: int = 0  # rows over max_tokens
    truncated: int = 0  # rollouts cut off by max_output_tokens
    truncation_known: int = 0  # rows that say whether they were cut off (rollouts do; released rows do not)
    duplicates: int = 0  # rows whose answer repeats an earlier row's; set by finish()
    task_rewards: dict[str, list[float]] = field(
        default_factory=dict
    )  # task type -> [lowest, highest] reward

    def add(self, row: Mapping[str, Any], split: str, tokens: int, over_max: bool) -> None:
        messages = row.get("messages") or []
        self.rows_by_split[split] += 1
        reward = _reward(row.get("reward"))
        if reward is not None:
            self.rewards.append(reward)
        self.messages.append(len(messages))
        self.turns.append(R.assistant_turns(messages))
        self.tokens.append(tokens)
        digest = R.answer_digest(messages)
        if digest is not None:
            self.digests.append(digest)
        task = str(row.get("task_type") or "unknown")
        self.task_types[task] += 1
        if reward is not None:
            _widen(self.task_rewards, task, reward, reward)
        calls = R.calls_tools(messages)
        self.tool_rows += calls
        if R.parse_tools(row.get("tools")):
            self.declared_rows += 1
            self.declared_tool_rows += calls
        self.reasoning_rows += R.has_reasoning(messages)
        self.over_max += over_max
        if isinstance(row.get("truncated"), bool):
            self.truncation_known += 1
            self.truncated += row["truncated"]

    def merge(self, other: SftPart) -> None:
        assert not self.duplicates and not other.duplicates, "merge before finish()"
        merge_parts(self, other)

    def finish(self) -> None:
        """Count duplicate answers from the hashes, then drop the hashes."""
        hashes = np.frombuffer(self.digests, dtype=np.uint64) if len(self.digests) else np.empty(0, np.uint64)
        self.duplicates = int(len(hashes) - len(np.unique(hashes)))
        self.digests = array("Q")

    @property
    def rows(self) -> int:
        return sum(self.rows_by_split.values())

    def reward_ranges(self) -> dict[str, tuple[float, float]]:
        """Task type -> (lowest, highest) reward of its rows."""
        return {task: (low, high) for task, (low, high) in self.task_rewards.items()}

    def summary(self) -> dict[str, Any]:
        rows = self.rows
        return {
            "rows": rows,
            "rows_by_split": dict(self.rows_by_split),
            "reward": describe(self.rewards),
            "rows_without_reward": rows - len(self.rewards),
            "messages": describe(self.messages),
            "assistant_turns": describe(self.turns),
            "tokens": describe(self.tokens),
            "over_max_tokens": self.over_max,
            "task_types": dict(self.task_types.most_common()),
            "task_entropy": normalised_entropy(self.task_types),
            "tool_use_rate": share(self.tool_rows, rows),
            "rows_declaring_tools": self.declared_rows,
            "tool_use_rate_where_declared": share(self.declared_tool_rows, self.declared_rows),
            "reasoning_rate": share(self.reasoning_rows, rows),
            "duplicates": self.duplicates,
            "duplicate_rate": share(self.duplicates, rows),
            "truncated": self.truncated if self.truncation_known else None,
        }


@dataclass
class DpoPart:
    """DPO pairs: prompt, chosen, rejected and their rewards."""

    pairs_by_split: Counter = field(default_factory=Counter)
    chosen_rewards: array = field(default_factory=lambda: array("d"))
    rejected_rewards: array = field(default_factory=lambda: array("d"))
    margins: array = field(default_factory=lambda: array("d"))
    chosen_tokens: array = field(default_factory=lambda: array("l"))
    rejected_tokens: array = field(default_factory=lambda: array("l"))
    per_prompt: Counter = field(default_factory=Counter)  # prompt_id -> pairs
    task_types: Counter = field(default_factory=Counter)
    not_preferred: int = 0  # pairs whose chosen reward is not above the rejected one
    chosen_longer: int = 0  # pairs whose chosen side has more tokens: DPO learns length if this is lopsided
    one_sided_reasoning: int = 0  # pairs where one side reasons and the other does not
    over_max: int = 0  # pairs with either side over max_tokens

    def add(
        self, row: Mapping[str, Any], split: str, prompt_id: str, tokens: tuple[int, int], over_max: bool
    ) -> None:
        self.pairs_by_split[split] += 1
        self.per_prompt[prompt_id] += 1
        chosen, rejected = _reward(row.get("chosen_reward")), _reward(row.get("rejected_reward"))
        if chosen is not None and rejected is not None:
            self.chosen_rewards.append(chosen)
            self.rejected_rewards.append(rejected)
            self.not_preferred += chosen <= rejected
        margin = _reward(row.get("margin"))
        if margin is None and chosen is not None and rejected is not None:
            margin = _reward(chosen - rejected)
        if margin is not None:
            self.margins.append(margin)
        self.chosen_tokens.append(tokens[0])
        self.rejected_tokens.append(tokens[1])
        self.chosen_longer += tokens[0] > tokens[1]
        self.one_sided_reasoning += R.has_reasoning(row.get("chosen") or []) != R.has_reasoning(
            row.get("rejected") or []
        )
        self.over_max += over_max
        if "task_type" in row:
            self.task_types[str(row.get("task_type") or "unknown")] += 1

    def merge(self, other: DpoPart) -> None:
        merge_parts(self, other)

    @property
    def pairs(self) -> int:
        return sum(self.pairs_by_split.values())

    def pairs_per_prompt(self) -> dict[int, int]:
        """How many prompts have 1, 2, ... pairs."""
        counts = Counter(self.per_prompt.values())
        return {k: counts[k] for k in sorted(counts)}

    def summary(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "pairs_by_split": dict(self.pairs_by_split),
            "prompts": len(self.per_prompt),
            "chosen_reward": describe(self.chosen_rewards),
            "rejected_reward": describe(self.rejected_rewards),
            "margin": describe(self.margins),
            "not_preferred": self.not_preferred,
            "pairs_per_prompt": self.pairs_per_prompt(),
            "chosen_tokens": describe(self.chosen_tokens),
            "rejected_tokens": describe(self.rejected_tokens),
            "chosen_longer_rate": share(self.chosen_longer, self.pairs),
            "one_sided_reasoning_rate": share(self.one_sided_reasoning, self.pairs),
            "over_max_tokens": self.over_max,
            "task_types": dict(self.task_types.most_common()),
        }
