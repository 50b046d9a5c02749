"""Decisions that need every rollout first, made over the compact index (no rollout text in memory): the
filters declared over every rollout (``rollforge.filters``), and DPO pairing."""

from __future__ import annotations

import dataclasses
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rollforge.engine.index import RowIndex
from rollforge.engine.job import Job
from rollforge.filtering import KEPT, PROMPT, Filtering
from rollforge.mix import Mixer
from rollforge.pairs import Candidate, Pair, Pairing
from rollforge.reasons import REASON_CODES


@dataclass
class SftSelection:
    keep: list[bool]
    filtered: Counter = field(default_factory=Counter)  # reason -> rollouts dropped
    mix: dict[str, Any] = field(default_factory=dict)  # the --mix plan (rollforge.mix), when one is set


def select_sft(index: RowIndex, job: Job, filtered: Counter | None = None) -> SftSelection:
    """Which rollouts become SFT rows: those every filter keeps. ``filtered`` counts what the per-rollout
    filters dropped where the rollouts were read (``Scan.filtered``); the filters that need every rollout
    then drop among the rest, in declaration order, and add theirs."""
    kept = [code == 0 for code in index.reason]
    over = job.filters.filtering(PROMPT, KEPT).stage(PROMPT, KEPT)
    dropped = Filtering.drop_rows(over, index, kept)
    mix = next((value.plan for _, value in over if isinstance(value, Mixer)), {})
    return SftSelection(keep=kept, filtered=(filtered or Counter()) + dropped, mix=mix)


@dataclass
class PairRows:
    """The chosen pairs as two columns of row numbers, 16 bytes a pair: rewards and ids are in the index."""

    chosen: array = field(default_factory=lambda: array("q"))
    rejected: array = field(default_factory=lambda: array("q"))

    def add(self, chosen: int, rejected: int) -> None:
        self.chosen.append(chosen)
        self.rejected.append(rejected)

    def extend(self, pairs: Iterable[Pair]) -> None:
        for chosen, rejected in pairs:
            self.add(chosen.row, rejected.row)

    def __len__(self) -> int:
        return len(self.chosen)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.chosen, self.rejected, strict=True)


@dataclass
class DpoSelection:
    pairs: PairRows = field(default_factory=PairRows)
    prompts: int = 0
    unpaired: Counter = field(default_factory=Counter)  # reason -> prompts without a pair
    not_chosen: Counter = field(
        default_factory=Counter
    )  # reason -> rollouts the filters bar from being chosen
    mix: dict[str, Any] = field(default_factory=dict)  # the --mix plan over the pairs (engine.mixing)
    dropped_by_mix: int = 0  # pairs beyond their environment's share


def ineligible(filtered: Counter, index: RowIndex, job: Job) -> Counter:
    """Rollouts a quality filter bars from the chosen side, by reason (they may still be rejected sides):
    the per-rollout filters' drops (``Scan.filtered``) and those of the filters judged per prompt."""
    kept = [code == 0 for code in index.reason]
    return filtered + Filtering.drop_rows(job.filters.filtering(PROMPT).stage(PROMPT), index, kept)


def eligible_rows(index: RowIndex, job: Job) -> Any:
    """Per row (numpy bool): passes the quality filters, those judged per prompt included: may be chosen."""
    import numpy as np

    eligible = np.frombuffer(index.reason, dtype=np.int8) == 0
    per_prompt = job.filters.filtering(PROMPT).stage(PROMPT)
    if per_prompt:
        kept = eligible.tolist()
        Filtering.drop_rows(per_prompt, index, kept)
        eligible = np.array(kept, dtype=bool)
    return eligible


def candidate_rows(index: RowIndex) -> Any:
    """Rows that may be a side of a pair: valid rollouts with an assistant turn (numpy int64, input order)."""
    import numpy as np

    return np.flatnonzero(np.frombuffer(index.reason, dtype=np.int8) != REASON_CODES["no_assistant_turn"])


def candidate_columns(index: RowIndex, job: Job) -> dict[str, Any]:
    """The DPO candidates as numpy columns, a few bytes a rollout and no Python object each (Ray's input)."""
    import numpy as np

    rows = candidate_rows(index)
    columns = {
        # Arrow sorts no uint64 extension type: the same bits as int64
        "prompt": np.frombuffer(index.prompt, dtype=np.int64),
        "reward": np.frombuffer(index.reward, dtype=np.float64),
        "eligible": eligible_rows(index, job),
        "trajectory": np.frombuffer(index.trajectory, dtype=np.uint64),
        "key": np.frombuffer(index.key, dtype=np.uint64),
        "env": np.frombuffer(index.env, dtype=np.uint64)
        if len(index.env)
        else np.zeros(len(index), np.uint64),
    }
    return {"row": rows, **{name: column[rows] for name, column in columns.items()}}


def prompt_count(index: RowIndex) -> int:
    import numpy as np

    return int(np.unique(np.frombuffer(index.prompt, dtype=np.uint64)).size)


def grouped_candidates(index: RowIndex, job: Job) -> Iterator[list[Candidate]]:
    """The candidates of each prompt, in input order, prompts in order of their first candidate. Groups
    come from a stable sort of candidate rows by prompt (a few bytes a rollout while it runs); Python
    objects exist for one group at a time."""
    import numpy as np

    rows = candidate_rows(index)
    if not len(rows):
        return
    prompts = np.frombuffer(index.prompt, dtype=np.uint64)
    rows = rows[np.argsort(prompts[rows], kind="stable")]
    grouped = prompts[rows]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    del grouped
    eligible = eligible_rows(index, job).tolist()  # a list: indexing a numpy array one by one is far slower
    reward, trajectory, key = index.reward, index.trajectory, index.key
    env = index.env if len(index.env) else array("Q", bytes(8 * len(index)))  # an index built without one
    for group in np.argsort(rows[starts], kind="stable").tolist():
        members = rows[starts[group] : ends[group]].tolist()
        yield [Candidate(r, reward[r], eligible[r], trajectory[r], key[r], env[r]) for r in members]


def first_appearance_order(pairs: list[tuple[int, int]], index: RowIndex) -> PairRows:
    """Pairs ordered by where their prompt's first candidate (a rollout with an assistant turn) appears in
    the input, as ``grouped_candidates`` orders the groups; stable within a prompt."""
    no_turn = REASON_CODES["no_assistant_turn"]
    first: dict[int, int] = {}
    for row, prompt in enumerate(index.prompt):
        if index.reason[row] != no_turn:
            first.setdefault(prompt, row)
    out = PairRows()
    for chosen, rejected in sorted(pairs, key=lambda pair: first[index.prompt[pair[0]]]):
        out.add(chosen, rejected)
    return out


def reward_ranges(index: RowIndex) -> tuple[tuple[int, float], ...]:
    """Each environment's observed reward range (max - min over its valid rollouts), by env code: what
    ``--margin-scale range`` scales the margin by."""
    import numpy as np

    if not len(index.env):
        return ()
    envs = np.frombuffer(index.env, dtype=np.uint64)
    rewards = np.frombuffer(index.reward, dtype=np.float64)
    out = []
    for code in np.unique(envs).tolist():
        mine = rewards[envs == code]
        out.append((int(code), float(mine.max() - mine.min())))
    return tuple(out)


def scaled_pairing(index: RowIndex, job: Job) -> Pairing:
    """The job's pairing, with each environment's reward range where ``--margin-scale range`` is in force."""
    if job.pairing.margin_scale != "range":
        return job.pairing
    return dataclasses.replace(job.pairing, ranges=reward_ranges(index))


def select_dpo(index: RowIndex, job: Job) -> DpoSelection:
    """Group every valid rollout by prompt and pair inside each group, in order of first appearance."""
    result = DpoSelection(prompts=prompt_count(index))
    groups = 0
    pairing = scaled_pairing(index, job)
    for group in grouped_candidates(index, job):
        groups += 1
        pairs, reason = pairing.pair(group)
        result.pairs.extend(pairs)
        if reason:
            result.unpaired[reason] += 1
    result.unpaired["no_assistant_turn"] = result.prompts - groups
    result.unpaired += Counter()  # drops zero counts
    return result
