"""DPO selection over the compact index: the numpy grouping gives exactly the pairs, prompts and unpaired
counts of the plain definition (group every candidate by prompt in input order, prompts in order of their
first candidate, pair each group), whatever the mix of prompts, rewards, filters and turnless rollouts."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from rollforge.engine.index import RowIndex
from rollforge.engine.job import Job
from rollforge.engine.select import select_dpo
from rollforge.filters import FilterOptions
from rollforge.pairs import STRATEGIES, Candidate, Pairing, pair_group
from rollforge.reasons import REASON_CODES

NO_TURN = REASON_CODES["no_assistant_turn"]


def random_index(seed: int, rows: int) -> RowIndex:
    rng = random.Random(seed)
    index = RowIndex()
    prompts = [rng.getrandbits(64) for _ in range(max(1, rows // 3))]
    for _ in range(rows):
        index.prompt.append(rng.choice(prompts))
        index.rollout.append(rng.getrandbits(64))
        index.reward.append(rng.choice([0.0, 0.25, 0.5, 0.75, 1.0]))
        index.reason.append(rng.choice([0, 0, 0, REASON_CODES["below_min_reward"], NO_TURN]))
        index.success.append(rng.random() < 0.5)
        index.trajectory.append(rng.choice([1, 2, rng.getrandbits(64)]))  # some identical trajectories
        index.key.append(rng.getrandbits(64))
    return index


def reference(index: RowIndex, job: Job, strategy: str, margin: float) -> tuple[list, int, Counter]:
    """The plain definition, with a dict of lists of Python objects."""
    rate = job.filters.min_task_success_rate
    total, wins = (
        Counter(index.prompt),
        Counter(p for p, s in zip(index.prompt, index.success, strict=True) if s),
    )
    groups: dict[int, list[Candidate]] = {}
    for row, prompt in enumerate(index.prompt):
        if index.reason[row] == NO_TURN:
            continue
        eligible = index.reason[row] == 0 and (rate is None or wins[prompt] / total[prompt] >= rate)
        groups.setdefault(prompt, []).append(
            Candidate(row, index.reward[row], eligible, index.trajectory[row], index.key[row])
        )
    pairs, unpaired = [], Counter({"no_assistant_turn": len(total) - len(groups)})
    for group in groups.values():
        made, reason = pair_group(group, strategy, margin)
        pairs += [(c.row, r.row) for c, r in made]
        unpaired[reason] += bool(reason)
    return pairs, len(total), +unpaired


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("rate", [None, 0.5])
@pytest.mark.parametrize("seed", range(4))
def test_select_dpo_matches_the_plain_definition(strategy, rate, seed):
    index = random_index(seed, rows=300)
    job = Job(filters=FilterOptions(min_task_success_rate=rate), pairing=Pairing(strategy, 0.1))
    got = select_dpo(index, job)
    pairs, prompts, unpaired = reference(index, job, strategy, 0.1)
    assert list(got.pairs) == pairs and len(got.pairs) == len(pairs)
    assert got.prompts == prompts
    assert got.unpaired == unpaired


def test_no_candidate_at_all():
    index = random_index(0, rows=20)
    index.reason = type(index.reason)("b", [NO_TURN] * len(index))
    got = select_dpo(index, Job())
    assert not got.pairs and got.unpaired == Counter({"no_assistant_turn": got.prompts})


def test_selection_prepares_only_the_filters_over_every_rollout():
    """select_sft and the DPO eligibility run in the parent: they must not load what only per-rollout
    filters need (a tokenizer that does not exist here would fail to load)."""
    from rollforge.engine.select import eligible_rows, ineligible, select_sft

    index = random_index(1, rows=50)
    job = Job(
        filters=FilterOptions(
            max_tokens=5, tokenizer="/no/such/tokenizer", min_task_success_rate=0.5, dedup="off"
        )
    )  # a synthetic index has no dedup column
    assert len(select_sft(index, job).keep) == 50
    assert len(eligible_rows(index, job)) == 50
    assert set(ineligible(Counter(), index, job)) <= {"low_task_success_rate"}
