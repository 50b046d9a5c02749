"""DPO pairing inside one prompt group: every strategy, every unpaired reason, margins, caps, seeded choice."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from gym_rollouts import answer, ids_by_field, read_jsonl, rollout, write_jsonl

from rollforge.engine.job import Job
from rollforge.filters import FilterOptions
from rollforge.pairs import EPS, STRATEGIES, UNPAIRED_REASONS, Candidate, pair_group
from rollforge.pipeline import DpoOptions, make_dpo


def group(*rewards: float, ineligible: tuple[int, ...] = (), same: tuple[int, ...] = ()) -> list[Candidate]:
    """Candidates in input order; ``same`` rows share one trajectory, every other row has its own."""
    return [
        Candidate(
            row=i, reward=r, eligible=i not in ineligible, trajectory=0 if i in same else 100 + i, key=i
        )
        for i, r in enumerate(rewards)
    ]


def rows_of(pairs: list[tuple[Candidate, Candidate]]) -> list[tuple[int, int]]:
    return [(c.row, r.row) for c, r in pairs]


# --- unpaired reasons ------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(
    ("candidates", "margin", "reason"),
    [
        (group(1.0), 0.1, "single_rollout"),
        ([], 0.1, "single_rollout"),
        (group(0.5, 0.5, 0.5), 0.0, "all_equal_rewards"),
        (group(1.0, 0.0, ineligible=(0, 1)), 0.1, "no_eligible_chosen"),
        (group(1.0, 0.0, ineligible=(0,)), 0.1, "below_margin"),  # the only eligible one is the worst
        (group(0.3, 0.25), 0.1, "below_margin"),
        (group(1.0, 0.0, 0.0, same=(0, 1, 2)), 0.1, "identical_trajectories"),
    ],
)
def test_unpaired_reasons(strategy: str, candidates: list[Candidate], margin: float, reason: str) -> None:
    assert pair_group(candidates, strategy, margin) == ([], reason)
    assert reason in UNPAIRED_REASONS


def test_identical_trajectories_only_remove_their_own_pairs() -> None:
    # 0 and 1 are the same trajectory: the best (0) is paired with 2 instead
    pairs, reason = pair_group(group(1.0, 0.0, 0.5, same=(0, 1)), "best-worst", 0.1)
    assert (rows_of(pairs), reason) == ([(0, 2)], None)


# --- strategies ------------------------------------------------------------------------------------------


def test_best_worst_pairs_the_best_eligible_with_the_worst() -> None:
    pairs, reason = pair_group(group(0.5, 1.0, 0.0, 0.2), "best-worst", 0.1)
    assert reason is None and rows_of(pairs) == [(1, 2)]
    # the best is not eligible (failed a quality filter): the best eligible one is chosen; the rejected
    # side may be any rollout, eligible or not
    pairs, _ = pair_group(group(0.5, 1.0, 0.0, 0.2, ineligible=(1, 2)), "best-worst", 0.1)
    assert rows_of(pairs) == [(0, 2)]


def test_ties_are_broken_by_input_order() -> None:
    pairs, _ = pair_group(group(0.0, 1.0, 0.0, 1.0), "best-worst", 0.1)
    assert rows_of(pairs) == [(1, 0)]  # the first of the best, the first of the worst


def test_best_random_picks_by_seeded_key_among_the_lower_ones() -> None:
    candidates = [
        Candidate(row=0, reward=0.2, eligible=True, trajectory=1, key=50),
        Candidate(row=1, reward=1.0, eligible=True, trajectory=2, key=99),
        Candidate(row=2, reward=0.0, eligible=True, trajectory=3, key=70),
        Candidate(
            row=3, reward=0.95, eligible=True, trajectory=4, key=1
        ),  # within the margin: never rejected
        Candidate(row=4, reward=0.5, eligible=True, trajectory=5, key=10),
    ]
    pairs, reason = pair_group(candidates, "best-random", 0.1)
    assert reason is None and rows_of(pairs) == [(1, 4)]  # smallest key among rewards <= 0.9


def test_all_pairs_every_eligible_chosen_over_the_margin_largest_first() -> None:
    pairs, reason = pair_group(group(1.0, 0.5, 0.0, 0.45), "all", 0.1)
    assert reason is None
    assert [(c.row, r.row, round(c.reward - r.reward, 6)) for c, r in pairs] == [
        (0, 2, 1.0),
        (0, 3, 0.55),
        (0, 1, 0.5),
        (1, 2, 0.5),
        (3, 2, 0.45),
    ]  # 0.5 vs 0.45 is under the margin
    capped, _ = pair_group(group(1.0, 0.5, 0.0, 0.45), "all", 0.1, max_pairs=2)
    assert rows_of(capped) == [(0, 2), (0, 3)]
    # ineligible rollouts are only ever rejected
    pairs, _ = pair_group(group(1.0, 0.5, 0.0, ineligible=(0,)), "all", 0.1)
    assert rows_of(pairs) == [(1, 2)]


@pytest.mark.parametrize("strategy", ["best-worst", "best-random"])
def test_max_pairs_does_not_change_single_pair_strategies(strategy: str) -> None:
    assert pair_group(group(1.0, 0.5, 0.0), strategy, 0.1, 1) == pair_group(
        group(1.0, 0.5, 0.0), strategy, 0.1
    )


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="unknown pairing strategy"):
        pair_group(group(1.0, 0.0), "worst-best", 0.1)


# --- margins ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("high", "low", "margin", "paired"),
    [
        (0.3, 0.2, 0.1, True),  # 0.3 - 0.2 == 0.09999999999999998: equal to the margin within tolerance
        (0.7, 0.6, 0.1, True),
        (1.0, 0.9, 0.1, True),
        (0.3, 0.25, 0.1, False),
        (0.3, 0.2, 0.1 + 1e-6, False),
        (0.5, 0.5 - 1e-12, 0.0, False),  # a difference within tolerance is a tie, even at margin 0
        (0.5, 0.4, 0.0, True),
        (19.4, -100.0, 100.0, True),  # rewards are environment-defined, not 0..1
    ],
)
def test_margin_is_compared_with_a_float_tolerance(
    high: float, low: float, margin: float, paired: bool
) -> None:
    assert 0.3 - 0.2 < 0.1  # the reason for the tolerance
    pairs, reason = pair_group(group(high, low), "best-worst", margin)
    assert bool(pairs) is paired
    if paired:
        assert pairs[0][0].reward - pairs[0][1].reward >= margin - EPS
    else:
        assert reason in ("below_margin", "all_equal_rewards")


# --- seeded randomness, independent of input order ---------------------------------------------------------


def candidates_for(order: list[tuple[str, float]], seed: int) -> list[Candidate]:
    """Rollouts (id, reward) in the given input order, keyed as the engine keys them (Job.key)."""
    job = Job(seed=seed)
    return [
        Candidate(row=i, reward=reward, eligible=True, trajectory=hash(rid), key=job.key(rid))
        for i, (rid, reward) in enumerate(order)
    ]


ROLLOUTS = [("best", 1.0)] + [(f"low{i}", i / 20) for i in range(12)]


def chosen_and_rejected(
    order: list[tuple[str, float]], seed: int, strategy: str = "best-random"
) -> tuple[str, str]:
    names = [rid for rid, _ in order]
    (pair,), _ = pair_group(candidates_for(order, seed), strategy, 0.1)
    return names[pair[0].row], names[pair[1].row]


def test_best_random_is_seeded() -> None:
    picks = {seed: chosen_and_rejected(ROLLOUTS, seed) for seed in range(10)}
    assert all(chosen == "best" for chosen, _ in picks.values())
    assert picks[3] == chosen_and_rejected(ROLLOUTS, 3)  # same seed, same pick
    assert len({rejected for _, rejected in picks.values()}) > 2  # the seed matters
    # not best-worst in disguise: the worst is not always the one picked
    assert any(rejected != "low0" for _, rejected in picks.values())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pairs_do_not_depend_on_input_order(strategy: str) -> None:
    for seed in range(5):
        shuffled = ROLLOUTS[:]
        random.Random(seed).shuffle(shuffled)
        names = [rid for rid, _ in shuffled]
        original = [rid for rid, _ in ROLLOUTS]
        a, _ = pair_group(candidates_for(ROLLOUTS, seed), strategy, 0.1)
        b, _ = pair_group(candidates_for(shuffled, seed), strategy, 0.1)
        as_ids = sorted((original[c.row], original[r.row]) for c, r in a)
        assert as_ids == sorted((names[c.row], names[r.row]) for c, r in b)


# --- through the pipeline: every reason counted, caps per prompt ----------------------------------------------


def prompt_group(prompt: str, rewards: list[float | None], **kw: Any) -> list[dict[str, Any]]:
    return [
        rollout(f"{prompt}?", [answer(f"{prompt} attempt {i}")], reward, task_id=f"{prompt}{i}", **kw)
        for i, reward in enumerate(rewards)
    ]


def test_make_dpo_counts_every_prompt_once(tmp_path: Path) -> None:
    identical = [
        rollout("IDENT?", [answer("same")], r, task_id=f"IDENT{i}", _ng_rollout_index=i)
        for i, r in enumerate([1.0, 0.0])
    ]
    rows = [
        *prompt_group("OK", [1.0, 0.5, 0.0, 0.45]),
        *prompt_group("SINGLE", [1.0]),
        *prompt_group("EQUAL", [1.0, 1.0]),
        rollout("CUT?", [answer("long")], 1.0, truncated=True, task_id="CUT0"),
        rollout("CUT?", [answer("short")], 0.0, truncated=True, task_id="CUT1"),
        *prompt_group("MARGIN", [0.3, 0.25]),
        *identical,
        rollout("EMPTY?", [], 1.0, task_id="EMPTY0"),
        rollout("EMPTY?", [], 0.0, task_id="EMPTY1"),
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    names = ids_by_field(src)
    out = tmp_path / "dpo.jsonl"
    unpaired = {
        "single_rollout": 1,
        "all_equal_rewards": 1,
        "no_eligible_chosen": 1,
        "below_margin": 1,
        "identical_trajectories": 1,
        "no_assistant_turn": 1,
    }
    for strategy, cap, pairs in (
        ("best-worst", None, [("OK0", "OK2")]),
        ("all", None, [("OK0", "OK2"), ("OK0", "OK3"), ("OK0", "OK1"), ("OK1", "OK2"), ("OK3", "OK2")]),
        ("all", 2, [("OK0", "OK2"), ("OK0", "OK3")]),
    ):
        acc = make_dpo(
            [src],
            str(out),
            FilterOptions(success_only=False),  # the pairing alone
            DpoOptions(pairing=strategy, max_pairs_per_prompt=cap),
            workers=1,
        )
        assert acc["prompts"] == 7 and acc["unpaired"] == unpaired
        assert acc["pairs"] == acc["written"] == len(pairs)
        assert [(names[r["chosen_id"]], names[r["rejected_id"]]) for r in read_jsonl(out)] == pairs
    # without --drop-truncated the truncated rollout may be chosen
    acc = make_dpo([src], str(out), FilterOptions(drop_truncated=False, success_only=False), workers=1)
    assert acc["pairs"] == 2 and "no_eligible_chosen" not in acc["unpaired"]
