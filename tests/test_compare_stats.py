"""compare's statistics against values computed by hand."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from rollforge.compare.compare import verdict
from rollforge.compare.stats import (
    mean_pass_at_k,
    paired_bootstrap_ci,
    pass_at_k,
    permutation_p_value,
    wins_losses_ties,
)


def test_pass_at_k_by_hand() -> None:
    assert pass_at_k(4, 2, 1) == 0.5  # c / n
    assert pass_at_k(4, 2, 2) == 1 - 1 / 6  # 1 - C(2,2)/C(4,2)
    assert pass_at_k(3, 1, 2) == pytest.approx(2 / 3)  # 1 - C(2,2)/C(3,2)
    assert pass_at_k(2, 0, 2) == 0.0
    assert pass_at_k(4, 3, 2) == 1.0  # n - c < k: every pair holds a success
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - comb(7, 5) / comb(10, 5))  # 1 - 21/252
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_mean_pass_at_k_skips_prompts_with_fewer_than_k_samples() -> None:
    groups = [(4, 2), (2, 0), (3, 1)]
    assert mean_pass_at_k(groups, 1) == (pytest.approx((1 / 2 + 0 + 1 / 3) / 3), 3)
    assert mean_pass_at_k(groups, 4) == (1.0, 1)  # only the 4-sample prompt: 1 - C(2,4)/C(4,4) = 1
    assert mean_pass_at_k(groups, 5) == (None, 0)


def test_wins_losses_ties() -> None:
    assert wins_losses_ties(np.array([0.25, 0.5, 0.0, -0.5, 1e-15])) == (2, 1, 2)


@pytest.mark.parametrize(
    ("diffs", "p"),
    [
        # all four positive: only "all +" and "all -" reach |sum| = 2.0 -> 2 / 2^4
        ([0.5, 0.25, 0.25, 1.0], 2 / 16),
        # 1,1,1,-1 flip to a sum of four +-1 in {-4,-2,0,2,4} (ways 1,4,6,4,1), then +-0.5; |sum| >= 2.5:
        # 4 -> both (2), 2 -> +0.5 only (4), 0 -> none, -2 -> -0.5 only (4), -4 -> both (2): 12 / 32
        ([1.0, 1.0, 1.0, -1.0, 0.5], 12 / 32),
        # |0.25 +- 0.5 +- 0.5| is never below 0.25: every flip is as extreme -> 1
        ([0.25, 0.5, 0.0, -0.5], 1.0),
        ([0.0, 0.0], 1.0),
        ([0.3], 1.0),  # one prompt: +0.3 and -0.3 are equally extreme
    ],
)
def test_exact_permutation_p_value(diffs: list[float], p: float) -> None:
    assert permutation_p_value(np.array(diffs)) == (p, "exact")


def test_monte_carlo_permutation_p_value() -> None:
    diffs = np.array([-1.0] * 30 + [0.0] * 10)  # 40 prompts: above the exact limit
    # |sum| = 30 needs all 30 signs equal: chance 2^-29, never seen in 10,000 flips -> p = 1 / 10,001
    assert permutation_p_value(diffs, n_perm=10_000, seed=3) == (1 / 10_001, "monte_carlo")
    noise = np.random.default_rng(0).normal(0, 1, 200)
    p, method = permutation_p_value(noise - noise.mean(), n_perm=2000, seed=1)  # mean exactly ~0
    assert method == "monte_carlo" and p > 0.9
    assert permutation_p_value(noise, 2000, seed=5) == permutation_p_value(noise, 2000, seed=5)


def test_bootstrap_ci_contains_the_mean_and_is_reproducible() -> None:
    diffs = np.array([0.25, 0.5, 0.0, -0.5])
    low, high = paired_bootstrap_ci(diffs, n_boot=10_000, seed=7)
    assert -0.5 <= low < diffs.mean() < high <= 0.5
    assert paired_bootstrap_ci(diffs, n_boot=10_000, seed=7) == (low, high)
    # By hand over all 4^4 resamples: P(mean <= -0.375) = 5/256 < 2.5% < 9/256 = P(mean <= -0.3125) and
    # P(mean <= 0.3125) = 241/256 < 97.5% < 251/256 = P(mean <= 0.375): the exact percentile CI is
    # [-0.3125, 0.375], and 10,000 resamples land on it for any seed (the margins are > 3 standard errors).
    assert (low, high) == (-0.3125, 0.375) == paired_bootstrap_ci(diffs, n_boot=10_000, seed=8)
    spread = np.random.default_rng(0).normal(0, 1, 60)
    assert paired_bootstrap_ci(spread, 2000, seed=1) != paired_bootstrap_ci(spread, 2000, seed=2)
    assert paired_bootstrap_ci(np.array([0.4, 0.4, 0.4]), 1000, 0) == pytest.approx((0.4, 0.4))


def test_bootstrap_blocks_match_one_big_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocking bounds memory without changing the numbers: same seed, same resamples."""
    diffs = np.random.default_rng(2).normal(0.1, 1, 50)
    whole = paired_bootstrap_ci(diffs, n_boot=3000, seed=4)
    monkeypatch.setattr("rollforge.compare.stats.BLOCK_CELLS", 50 * 7)  # blocks of 7 resamples
    assert paired_bootstrap_ci(diffs, n_boot=3000, seed=4) == whole


def test_bootstrap_ci_excludes_zero_for_a_clear_loss() -> None:
    diffs = np.array([-1.0] * 30 + [0.0] * 10)
    low, high = paired_bootstrap_ci(diffs, 10_000, seed=0)
    assert low < -0.75 < high < 0


CI_IN = "the 95% CI of the mean reward difference includes 0"
CI_OUT = "the 95% CI of the mean reward difference excludes 0"


@pytest.mark.parametrize(
    ("ci", "p", "text"),
    [
        ([-0.1, 0.2], 0.4, f"no significant difference ({CI_IN}, and the permutation p = 0.4)"),
        ([0.01, 0.2], 0.003, f"candidate better ({CI_OUT}, and the permutation p = 0.003)"),
        ([-0.3, -0.1], 0.01, f"candidate worse ({CI_OUT}, and the permutation p = 0.01)"),
        # The CI and the p-value disagree: neither alone makes the verdict.
        ([0.004, 0.17], 0.0593, f"inconclusive ({CI_OUT}, but the permutation p = 0.0593 is not below 0.05)"),
        ([-0.01, 0.3], 0.04, f"inconclusive (the permutation p = 0.04 is below 0.05, but {CI_IN})"),
    ],
)
def test_verdict_words(ci: list[float], p: float, text: str) -> None:
    assert verdict({"ci95": ci, "p_value": p}, n_paired=50) == text
    assert verdict({"ci95": None, "p_value": None}, n_paired=0) == "no paired prompts: no paired comparison"


def test_a_p_value_at_the_permutation_floor_is_said_as_a_bound() -> None:
    delta = {"ci95": [0.5, 0.7], "p_value": 1 / 10_001, "p_value_at_floor": True}
    assert verdict(delta, n_paired=200) == (
        f"candidate better ({CI_OUT}, and the permutation p <= 1/10001, the floor of 10000 permutations "
        "(none was as extreme))"
    )
