"""``success: max`` made concrete: each environment's best observed reward, read from the data before a
run judges anything (one extra read of the inputs, only when the policy asks for it)."""

from __future__ import annotations

from typing import Any

from rollforge.engine.job import Job
from rollforge.engine.local import scan
from rollforge.environments import DEFAULT, MAX
from rollforge.errors import RollforgeError
from rollforge.filters import FilterOptions
from rollforge.io.sources import STDIN, Discovery


def resolve_max(filters: FilterOptions, discovery: Discovery, workers: int | None = None) -> FilterOptions:
    """``filters`` with every `max` threshold replaced by its environment's best observed reward (marked
    ``observed_max``, so summaries state the assumption). A `max` on ``default`` gives every environment
    not named its own best. An environment with no rollout keeps the global threshold."""
    if not filters.policy.wants_max:
        return filters
    if any(source.path == STDIN for source in discovery.sources):
        raise RollforgeError(
            "success: max reads the inputs twice (each environment's best reward first): not from stdin",
            hint="give the rollouts as files, or a number instead of max",
        )
    probe = FilterOptions(env_field=filters.env_field, drop_truncated=False)
    best = scan(discovery, Job(filters=probe), None, workers).inventory.envs.best()
    return filters.replace(environments=resolved(filters.environments, best))


def resolved(environments: dict[str, Any], best: dict[str, float]) -> dict[str, Any]:
    """The ``environments`` map with `max` thresholds made numbers (``best``: environment -> its max)."""
    out = {name: dict(entry) for name, entry in environments.items()}
    for entry in out.values():
        if entry.get("success") == MAX:
            entry.pop("success")
            entry["success_threshold"] = MAX
    if out.get(DEFAULT, {}).get("success_threshold") == MAX:
        out[DEFAULT].pop("success_threshold")
        for env in best:
            if out.get(env, {}).get("success_threshold") is None:
                out.setdefault(env, {})["success_threshold"] = MAX
    for name, entry in out.items():
        if entry.get("success_threshold") == MAX:
            if name in best:
                entry.update(success_threshold=best[name], observed_max=True)
            else:
                entry.pop("success_threshold")
    return out
