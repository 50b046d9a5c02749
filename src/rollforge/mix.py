"""Mixtures: each environment's share of a dataset (``--mix NAME=WEIGHT``, the recipe's ``weight``).

Weights are relative (0.5/0.3/0.2, or 5/3/2). Without a size the set is the largest one that holds every
environment at its share exactly: the environment with the least supply for its weight limits it
(``limited_by``), the others give up their surplus (a seeded choice: the rows with the smallest seeded keys,
not the first ones read). With ``--mix-size N`` each environment is asked for its share of N; one that has
fewer rows gives all it has and is named in ``short`` with the rows it lacks, and the others are not
inflated to make up for it. An environment with no rows at all is short whatever the size, and the others
mix among themselves. The plan is printed, and written into the manifest and the report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollforge.environments import DEFAULT


def shares(weights: Mapping[str, float], present: Sequence[str]) -> dict[str, float]:
    """Each environment's wanted share: the named weights, ``default``'s weight for each present
    environment not named, normalised to sum to 1 (zero weights leave an environment out)."""
    full = {name: w for name, w in weights.items() if name != DEFAULT}
    if DEFAULT in weights:
        full.update({env: weights[DEFAULT] for env in present if env not in full})
    full = {name: w for name, w in full.items() if w > 0}
    total = sum(full.values())
    return {name: w / total for name, w in sorted(full.items())} if total else {}


def _round(counts: dict[str, float]) -> dict[str, int]:
    return {name: int(value + 0.5) for name, value in counts.items()}


def plan_mix(
    supply: Mapping[str, int], weights: Mapping[str, float], size: int | None = None
) -> dict[str, Any]:
    """How many rows each environment gives: ``taken``, the achieved shares, the shortfalls."""
    wanted_share = shares(weights, list(supply))
    stocked = {env: s for env, s in wanted_share.items() if supply.get(env, 0) > 0}
    short: dict[str, int] = {}
    limited_by = None
    if size is not None:
        wanted = _round({env: s * size for env, s in wanted_share.items()})
        taken = {env: min(n, supply.get(env, 0)) for env, n in wanted.items()}
        short = {env: wanted[env] - taken[env] for env in wanted if taken[env] < wanted[env]}
    else:
        scale = sum(stocked.values())
        inner = {env: s / scale for env, s in stocked.items()}
        total = min((supply[env] / s for env, s in inner.items()), default=0.0)
        limited_by = min(inner, key=lambda env: (supply[env] / inner[env], env)) if inner else None
        taken = {
            env: min(supply[env], n) for env, n in _round({e: s * total for e, s in inner.items()}).items()
        }
        wanted = dict(taken)
        for env in wanted_share:
            if env not in stocked:  # named in the mix but nothing of it was kept
                wanted[env], taken[env] = 0, 0
                short[env] = 0
    kept = sum(taken.values())
    return {
        "weights": {env: round(s, 6) for env, s in wanted_share.items()},
        "size": size,
        "supply": {env: supply.get(env, 0) for env in wanted_share},
        "wanted": wanted,
        "taken": taken,
        "achieved": {env: round(taken[env] / kept, 6) if kept else 0.0 for env in wanted_share},
        "short": short,
        "limited_by": limited_by,
        "left_out": sorted(env for env in supply if env not in wanted_share and supply[env]),
    }


def describe_mix(plan: Mapping[str, Any]) -> list[str]:
    """One line per environment, and one per shortfall: what the summary prints."""
    lines = [
        f"{env}: {plan['taken'][env]} rows, {plan['achieved'][env]:.1%} (wanted {w:.1%}, had "
        f"{plan['supply'][env]})"
        for env, w in plan["weights"].items()
    ]
    for env, missing in plan["short"].items():
        had = plan["supply"][env]
        lines.append(
            f"short: {env} had {had} rows"
            + (f", {missing} fewer than its share" if missing else ", none to give its share")
        )
    if plan.get("limited_by"):
        lines.append(f"limited by {plan['limited_by']} (the least supply for its weight)")
    return lines


@dataclass
class Mixer:
    """A run's mix, prepared once: it drops the rows beyond each environment's share and keeps its plan."""

    weights: dict[str, float]
    size: int | None = None
    plan: dict[str, Any] = field(default_factory=dict)

    def drop(self, envs: Sequence[str], keys: Sequence[int], kept: Sequence[bool]) -> Iterator[int]:
        """Rows (of those ``kept``) to drop; ``envs`` names each row's environment, ``keys`` are seeded."""
        members: dict[str, list[int]] = defaultdict(list)
        for row, env in enumerate(envs):
            if kept[row]:
                members[env].append(row)
        self.plan = plan_mix(
            Counter({env: len(rows) for env, rows in members.items()}), self.weights, self.size
        )
        for env, group in members.items():
            group.sort(key=lambda row: keys[row])
            yield from group[self.plan["taken"].get(env, 0) :]
