"""DPO pairing over the rollouts of ONE prompt. Pairs are only ever made inside a prompt group.

Strategies (field guide section 5):
- ``best-worst`` (default): the best eligible rollout vs the worst one (RLHFlow ``max_min``);
- ``best-random``: the best eligible rollout vs a seeded random one below it (UltraFeedback binarized);
- ``all``: every (eligible, other) pair over the margin, largest margins first.
The chosen side must pass the quality filters (``eligible``); the rejected side may be any rollout with an
assistant turn, which is why pairing runs on the unfiltered group. Equal rewards and identical
trajectories are never paired. Ties in choice are broken by input order, random choices by a seeded hash,
so the result does not depend on how the input was split across workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

STRATEGIES = ("best-worst", "best-random", "all")
MARGIN_SCALES = ("absolute", "range")
EPS = 1e-9  # 0.3 - 0.2 is 0.0999...: margins are compared with a tolerance
UNPAIRED_REASONS = {
    "no_assistant_turn": "no rollout of the prompt has an assistant turn",
    "single_rollout": "the prompt has one rollout",
    "all_equal_rewards": "every rollout of the prompt has the same reward",
    "no_eligible_chosen": "no rollout of the prompt passes the quality filters",
    "below_margin": "no eligible rollout beats another by --min-margin",
    "identical_trajectories": "the only pairs over the margin are identical trajectories",
}


@dataclass(frozen=True)
class Pairing:
    """How a run pairs: the strategy, the smallest reward margin, a cap per prompt, and whether pairs move
    what both sides share into the prompt (``--split-at-divergence``)."""

    strategy: str = "best-worst"
    min_margin: float = 0.1
    max_pairs_per_prompt: int | None = None
    split_at_divergence: bool = False
    # absolute: min_margin is in reward units; range: a fraction of the environment's observed reward range
    # (sokoban's -2..10 and a 0/1 verifier then need the same relative gap)
    margin_scale: str = "absolute"
    ranges: tuple[tuple[int, float], ...] = ()  # env code -> observed reward range (set before pairing)

    def pair(self, group: list[Candidate]) -> tuple[list[Pair], str | None]:
        return pair_group(group, self.strategy, self.margin_of(group), self.max_pairs_per_prompt)

    @cached_property
    def _ranges(self) -> dict[int, float]:
        return dict(self.ranges)

    def margin_of(self, group: list[Candidate]) -> float:
        """The smallest margin in this prompt's group: its environment's share of its range, if scaled."""
        if self.margin_scale != "range" or not group:
            return self.min_margin
        if not self.ranges:
            raise ValueError("margin_scale range needs the environments' reward ranges (engine.select)")
        return self.min_margin * self._ranges.get(group[0].env, 0.0)


@dataclass(slots=True)  # not frozen: a frozen init is several times slower, and a build makes one per rollout
class Candidate:
    row: int  # global input order: the index of the rollout in the run
    reward: float
    eligible: bool  # passes the quality filters: may be chosen
    trajectory: int  # hash of the generated messages: identical trajectories are never paired
    key: int  # seeded hash of the rollout id, for random choices
    env: int = 0  # the environment's code (rollforge.environments.env_code)


Pair = tuple[Candidate, Candidate]


def pair_group(
    group: list[Candidate], strategy: str, min_margin: float, max_pairs: int | None = None
) -> tuple[list[Pair], str | None]:
    """Pairs for one prompt, or ([], the reason none could be made). A rollout that repeats an earlier one
    byte for byte (the same ``key``) is one rollout: it never makes a second, identical pair."""
    group = _first_copies(group)
    if len(group) < 2:
        return [], "single_rollout"
    rewards = [c.reward for c in group]
    if max(rewards) == min(rewards):
        return [], "all_equal_rewards"
    chosen = [c for c in group if c.eligible]
    if not chosen:
        return [], "no_eligible_chosen"
    valid = [(c, r) for c in chosen for r in group if _margin_ok(c, r, min_margin)]
    if not valid:
        return [], "below_margin"
    valid = [(c, r) for c, r in valid if c.trajectory != r.trajectory]
    if not valid:
        return [], "identical_trajectories"
    if strategy == "all":
        valid.sort(key=lambda p: (p[1].reward - p[0].reward, p[0].row, p[1].row))
        return valid[:max_pairs] if max_pairs else valid, None
    best = max(c.reward for c, _ in valid)
    best_pairs = [p for p in valid if p[0].reward == best]
    first_chosen = min(p[0].row for p in best_pairs)
    options = [r for c, r in best_pairs if c.row == first_chosen]
    top = next(c for c in chosen if c.row == first_chosen)
    if strategy == "best-worst":
        rejected = min(options, key=lambda r: (r.reward, r.row))
    elif strategy == "best-random":
        rejected = min(options, key=lambda r: (r.key, r.row))
    else:
        raise ValueError(f"unknown pairing strategy {strategy!r}")
    return [(top, rejected)], None


def _first_copies(group: list[Candidate]) -> list[Candidate]:
    """The group without the rollouts whose key an earlier one has, in input order."""
    seen: set[int] = set()
    out = []
    for c in group:
        if c.key not in seen:
            seen.add(c.key)
            out.append(c)
    return out


def _margin_ok(chosen: Candidate, rejected: Candidate, min_margin: float) -> bool:
    margin = chosen.reward - rejected.reward
    return chosen.row != rejected.row and margin > EPS and margin >= min_margin - EPS
