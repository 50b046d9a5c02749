"""Pure statistics for comparing two runs: pass@k, and paired tests over per-prompt differences.

All resampling is vectorised with numpy and done in blocks of at most ``BLOCK_CELLS`` numbers, so 10,000
resamples of 100,000 prompts never hold a 10^9-cell matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

BLOCK_CELLS = 1 << 22  # numbers per resampling block (32 MiB of float64)
EXACT_MAX = 16  # up to this many prompts the permutation test enumerates all 2^n sign flips


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one prompt with ``c`` successes among ``n`` samples: 1 - C(n-c, k) / C(n, k)."""
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 < k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every k-subset holds a success
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mean_pass_at_k(groups: Iterable[tuple[int, int]], k: int) -> tuple[float | None, int]:
    """pass@k averaged over the prompts (n, c) that have at least k samples; and how many those are."""
    values = [pass_at_k(n, c, k) for n, c in groups if n >= k]
    return (sum(values) / len(values) if values else None), len(values)


def wins_losses_ties(diffs: np.ndarray, tol: float = 1e-12) -> tuple[int, int, int]:
    """Prompts where the candidate's mean reward is higher, lower, equal (within ``tol``)."""
    wins = int(np.count_nonzero(diffs > tol))
    losses = int(np.count_nonzero(diffs < -tol))
    return wins, losses, len(diffs) - wins - losses


def _blocks(total: int, width: int) -> Iterable[int]:
    """Sizes of row blocks that cover ``total`` rows of ``width`` numbers, each within BLOCK_CELLS."""
    rows = max(1, BLOCK_CELLS // max(width, 1))
    for start in range(0, total, rows):
        yield min(rows, total - start)


def paired_bootstrap_ci(
    diffs: np.ndarray, n_boot: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean per-prompt difference: prompts resampled with replacement."""
    n = len(diffs)
    if n == 0:
        raise ValueError("no paired prompts to resample")
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [diffs[rng.integers(0, n, size=(rows, n))].mean(axis=1) for rows in _blocks(n_boot, n)]
    )
    alpha = (1.0 - level) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def permutation_p_value(
    diffs: np.ndarray, n_perm: int = 10_000, seed: int = 0, exact_max: int = EXACT_MAX
) -> tuple[float, str]:
    """Two-sided paired permutation test of "mean difference is 0": each prompt's difference keeps its size
    and gets a random sign. Returns (p, "exact") enumerating all 2^n sign vectors when n <= ``exact_max``,
    else (p, "monte_carlo") from ``n_perm`` random flips with the +1 correction, so p is never 0."""
    n = len(diffs)
    if n == 0:
        raise ValueError("no paired prompts to permute")
    observed = abs(float(diffs.sum()))
    # Sums equal to the observed one up to float rounding count as "as extreme".
    slack = 1e-9 * float(np.abs(diffs).sum()) + 1e-12
    if n <= exact_max:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        sums = np.abs((1 - 2 * bits) @ diffs)
        return float(np.count_nonzero(sums >= observed - slack)) / 2**n, "exact"
    rng = np.random.default_rng(seed)
    extreme = 0
    for rows in _blocks(n_perm, n):
        signs = rng.integers(0, 2, size=(rows, n), dtype=np.int8) * 2 - 1
        extreme += int(np.count_nonzero(np.abs(signs @ diffs) >= observed - slack))
    return (extreme + 1) / (n_perm + 1), "monte_carlo"
