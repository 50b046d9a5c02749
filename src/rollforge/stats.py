"""What is in a set of rollouts files: counts, reward statistics, shapes and warnings (``rollforge inspect``).

:class:`Inventory` is fed records one at a time (memory: three 8-byte numbers per rollout, kept in
arrays, for the summary; none with ``values=False``, which counts only) and partial inventories merge, so
parallel workers can each build one.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rollforge.env_stats import EnvTally, environment_warnings
from rollforge.environments import Policy, environment_of
from rollforge.rollout import Head, Reject, Rollout
from rollforge.success import Success

REASONING_SHAPES = (
    "reasoning_summary",
    "reasoning_hidden",
    "reasoning_encrypted",
    "think_inline",
    "think_lone_close",
    "think_unclosed",
)
EXAMPLES_PER_REASON = 3


def prompt_groups(prompt_ids: array, rewards: array) -> tuple[int, Counter, int]:
    """(distinct prompts, rollouts per prompt -> prompts, prompts whose rewards differ), by sorting the two
    columns: 16 bytes a rollout, where a dict of per-prompt objects would take a few hundred."""
    import numpy as np

    if not prompt_ids:
        return 0, Counter(), 0
    ids = np.frombuffer(prompt_ids, dtype=np.uint64)
    order = np.argsort(ids, kind="stable")
    ids, values = ids[order], np.frombuffer(rewards, dtype=np.float64)[order]
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    sizes = np.diff(np.append(starts, len(ids)))
    spread = np.maximum.reduceat(values, starts) > np.minimum.reduceat(values, starts)
    return len(starts), Counter(sizes.tolist()), int(spread.sum())


@dataclass
class FileRow:
    """One input file's share: rollouts read, lines rejected, and the range of its rewards."""

    rollouts: int = 0
    rejected: int = 0
    low: float = math.inf
    high: float = -math.inf

    def merge(self, other: FileRow) -> None:
        self.rollouts += other.rollouts
        self.rejected += other.rejected
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)

    def json(self) -> dict[str, Any]:
        rewards = {"min": self.low, "max": self.high} if self.rollouts else {"min": None, "max": None}
        return {"rollouts": self.rollouts, "rejected": self.rejected, "reward": rewards}


@dataclass
class Repeats:
    """Which rollouts repeat an earlier line byte for byte: each rollout's id (the hash of its line) in input
    order, 8 bytes a rollout, and which file each came from as runs (file, count): no string per rollout."""

    ids: array = field(default_factory=lambda: array("Q"))
    runs: list[list[Any]] = field(default_factory=list)

    def add(self, rollout_id: str, file: str) -> None:
        self.ids.append(int(rollout_id, 16))
        if self.runs and self.runs[-1][0] == file:
            self.runs[-1][1] += 1
        else:
            self.runs.append([file, 1])

    def merge(self, other: Repeats) -> None:
        self.ids.extend(other.ids)
        for file, count in other.runs:
            if self.runs and self.runs[-1][0] == file:
                self.runs[-1][1] += count
            else:
                self.runs.append([file, count])

    def json(self) -> dict[str, Any]:
        """``count``: rollouts whose line repeats an earlier one (the first copy is not counted); ``files``:
        the files those repeats are in, with how many each."""
        import numpy as np

        ids = np.frombuffer(self.ids, dtype=np.uint64)
        first = np.zeros(len(ids), dtype=bool)
        first[np.unique(ids, return_index=True)[1]] = True
        names = [file for file, _ in self.runs]
        owner = np.repeat(np.arange(len(names)), [count for _, count in self.runs])
        per_file = Counter(owner[~first].tolist())
        return {"count": int((~first).sum()), "files": {names[k]: n for k, n in sorted(per_file.items())}}


@dataclass
class Inventory:
    values: bool = True  # keep rewards and prompt ids per rollout (for summary); False: counts only
    lines: int = 0
    rollouts: int = 0
    rejected: list[Reject] = field(default_factory=list)
    rewards: array = field(default_factory=lambda: array("d"))
    prompt_ids: array = field(default_factory=lambda: array("Q"))  # converted rollouts: prompt id and reward
    prompt_rewards: array = field(default_factory=lambda: array("d"))
    facts: Counter = field(default_factory=Counter)
    task_types: Counter = field(default_factory=Counter)
    with_tools: int = 0
    truncated: int = 0
    files: Counter = field(default_factory=Counter)
    unconverted: int = 0  # rollouts a filter dropped before conversion (not in prompts or facts)
    per_file: dict[str, FileRow] = field(default_factory=dict)  # input order
    repeats: Repeats = field(default_factory=Repeats)
    success: Success = field(default_factory=Success)  # the policy in force, but for success: max ...
    policy: Policy = field(default_factory=Policy)  # ... which is counted from the rewards at summary
    envs: EnvTally = field(default_factory=EnvTally)  # per environment (rollforge.env_stats)

    def add(self, record: Rollout | Head | Reject) -> None:
        self.lines += 1
        row = self.per_file.setdefault(record.file, FileRow())
        if isinstance(record, Reject):
            self.rejected.append(record)
            row.rejected += 1
            if self.values:
                self.envs.reject(record.file)
            return
        self.rollouts += 1
        row.rollouts += 1
        row.low, row.high = min(row.low, record.reward), max(row.high, record.reward)
        env = environment_of(record, self.success.env_field)
        self.envs.counts[env] += 1  # always: a run's accounting names each environment's rollouts
        if self.values:
            self.rewards.append(record.reward)
            self.repeats.add(record.rollout_id, record.file)
            self.envs.add(env, record.reward, self.success(record), record.file)
        if isinstance(record, Head):  # dropped before conversion: only its reward is known cheaply
            self.unconverted += 1
            return
        if self.values:
            self.prompt_ids.append(int(record.prompt_id, 16))
            self.prompt_rewards.append(record.reward)
        self.facts.update(record.facts)
        self.task_types[record.task_type] += 1
        self.with_tools += record.uses_tools
        self.truncated += record.truncated
        self.files[record.file] += 1

    def merge(self, other: Inventory) -> None:
        self.values = self.values and other.values
        self.lines += other.lines
        self.rollouts += other.rollouts
        self.rejected.extend(other.rejected)
        self.rewards.extend(other.rewards)
        self.prompt_ids.extend(other.prompt_ids)
        self.prompt_rewards.extend(other.prompt_rewards)
        self.facts.update(other.facts)
        self.task_types.update(other.task_types)
        self.with_tools += other.with_tools
        self.truncated += other.truncated
        self.files.update(other.files)
        self.unconverted += other.unconverted
        for file, row in other.per_file.items():
            self.per_file.setdefault(file, FileRow()).merge(row)
        self.repeats.merge(other.repeats)
        self.envs.merge(other.envs)

    def summary(self) -> dict[str, Any]:
        """The JSON form (``rollforge inspect --json``): lines == rollouts + len(rejected)."""
        assert self.values, "an inventory that kept counts only has no summary"
        prompts, per_prompt, contrastive = prompt_groups(self.prompt_ids, self.prompt_rewards)
        duplicates = self.repeats.json()
        envs = self.envs.summary(self.success, self.policy)
        return {
            "lines": self.lines,
            "rollouts": self.rollouts,
            "rejected": [{"file": r.file, "line": r.line, "reason": r.reason} for r in self.rejected],
            "rejected_by_reason": self._rejects_by_reason(),
            "prompts": prompts,
            "rollouts_per_prompt": {str(k): per_prompt[k] for k in sorted(per_prompt)},
            "prompts_with_reward_spread": contrastive,
            "task_types": dict(self.task_types.most_common()),
            "reward": reward_stats(self.rewards),
            "items": {
                k.removeprefix("item:"): v for k, v in sorted(self.facts.items()) if k.startswith("item:")
            },
            "reasoning": {k: self.facts[k] for k in REASONING_SHAPES if self.facts[k]},
            "facts": {k: v for k, v in sorted(self.facts.items()) if not k.startswith("item:")},
            "tool_use_rate": self.with_tools / self.rollouts if self.rollouts else 0.0,
            "truncated": self.truncated,
            "files": dict(self.files),
            "per_file": {file: row.json() for file, row in self.per_file.items()},
            "duplicates": duplicates,
            "warnings": self.warnings(contrastive, prompts) + duplicate_warnings(duplicates),
            "environments": envs,
            "environment_warnings": environment_warnings(envs, self.success, self.policy),
        }

    def _rejects_by_reason(self) -> dict[str, dict[str, Any]]:
        """Per reason: the count, and examples spread over the files (one from each file first, in input
        order, then more from the same files), as text (``examples``) and as fields (``example_lines``)."""
        by_reason: dict[str, list[Reject]] = {}
        for r in self.rejected:
            by_reason.setdefault(r.reason, []).append(r)
        out: dict[str, dict[str, Any]] = {}
        for reason, rejects in by_reason.items():
            picked = spread_examples(rejects, EXAMPLES_PER_REASON)
            out[reason] = {
                "count": len(rejects),
                "examples": [f"{r.where()}: {r.message}" for r in picked],
                "example_lines": [{"file": r.file, "line": r.line, "message": r.message} for r in picked],
            }
        return out

    def warnings(self, contrastive: int, prompts: int) -> list[str]:
        warn = []
        if self.lines and not self.rollouts:
            warn.append("no line is a usable rollout: see the reject reasons")
        if self.rollouts and contrastive == 0:
            warn.append("no prompt has two rollouts with different rewards: no DPO pairs possible")
        if self.rejected and len(self.rejected) >= 0.1 * self.lines:
            warn.append(f"{len(self.rejected)} of {self.lines} lines rejected: check the reject reasons")
        if self.rollouts and prompts == self.rollouts:
            warn.append("every prompt has a single rollout: collect with --num-repeats > 1 for DPO")
        if self.rewards and min(self.rewards) == max(self.rewards):
            warn.append(f"every reward is {self.rewards[0]}: nothing to filter or pair on")
        if self.truncated:
            warn.append(
                f"{self.truncated} truncated rollouts (incomplete_details): dropped from SFT by default"
            )
        if self.facts["reasoning_hidden"] + self.facts["reasoning_encrypted"]:
            warn.append("some reasoning is hidden or encrypted: there is no text of it to train on")
        return warn


def spread_examples(rejects: list[Reject], n: int) -> list[Reject]:
    """Up to ``n`` of ``rejects``: the first of each file in turn, then the next of each, ... (in input
    order within a file): a problem in several files shows in several files."""
    per_file: dict[str, list[Reject]] = {}
    for r in rejects:
        queue = per_file.setdefault(r.file, [])
        if len(queue) < n:
            queue.append(r)
    picked: list[Reject] = []
    for rank in range(n):
        picked += [queue[rank] for queue in per_file.values() if rank < len(queue)]
    return picked[:n]


def duplicate_warnings(duplicates: dict[str, Any]) -> list[str]:
    if not duplicates["count"]:
        return []
    files = ", ".join(f"{file} ({n})" for file, n in list(duplicates["files"].items())[:3])
    more = f" and {len(duplicates['files']) - 3} more files" if len(duplicates["files"]) > 3 else ""
    return [
        f"{duplicates['count']} rollouts repeat an earlier line byte for byte, in {files}{more}: sft and "
        "build drop them (--dedup exact, the default), sample never draws one twice"
    ]


def quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of an already sorted list."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    low, high, frac = sorted_values[lo], sorted_values[hi], pos - lo
    if math.isinf(high - low):  # finite rewards near the float limit, far apart: weigh them instead
        return low * (1 - frac) + high * frac
    return low + (high - low) * frac


# Past this magnitude a sum or a square of rewards may overflow: such values are scaled down first.
_LARGE = 1e150


def mean_std(sorted_values: list[float]) -> tuple[float, float]:
    """Mean and population standard deviation of finite values, without overflow however large they are."""
    n = len(sorted_values)
    scale = max(abs(sorted_values[0]), abs(sorted_values[-1]))
    if scale <= _LARGE:
        mean = sum(sorted_values) / n
        return mean, math.sqrt(sum((v - mean) ** 2 for v in sorted_values) / n)
    scaled = [v / scale for v in sorted_values]
    mean = math.fsum(scaled) / n
    return mean * scale, math.sqrt(math.fsum((v - mean) ** 2 for v in scaled) / n) * scale


def reward_stats(rewards: array | list[float]) -> dict[str, Any]:
    if not rewards:
        return {"count": 0}
    values = sorted(rewards)
    mean, std = mean_std(values)
    distinct = sorted(set(values))
    return {
        "count": len(values),
        "min": values[0],
        "max": values[-1],
        "mean": mean,
        "std": std,
        "quantiles": {f"p{int(q * 100)}": quantile(values, q) for q in (0.1, 0.25, 0.5, 0.75, 0.9)},
        "distinct": len(distinct),
        "values": distinct if len(distinct) <= 20 else None,
    }
