"""Per-environment figures of a corpus (``rollforge inspect``'s environments, and each environment's best
reward for ``success: max``): rollouts, rejects, rewards on the environment's own scale, success rate.

Environments are told apart as ``rollforge.environments`` says. A rejected line has no usable fields, so it
counts for the environment its file's rollouts name when they all name one, else for the file's stem.
"""

from __future__ import annotations

from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from rollforge.environments import MAX, MAX_ASSUMPTION, Policy, file_environment
from rollforge.success import Success


@dataclass
class EnvTally:
    """Fed one rollout (or reject) at a time by the inventory; partial tallies merge."""

    counts: Counter = field(default_factory=Counter)  # rollouts per environment (kept even without values)
    rewards: dict[str, array] = field(default_factory=dict)
    successes: Counter = field(default_factory=Counter)
    rejects: Counter = field(default_factory=Counter)  # by file
    files: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # file -> environments

    def add(self, env: str, reward: float, success: bool, file: str) -> None:
        self.rewards.setdefault(env, array("d")).append(reward)
        self.successes[env] += success
        self.files[file].add(env)

    def reject(self, file: str) -> None:
        self.rejects[file] += 1

    def merge(self, other: EnvTally) -> None:
        for env, values in other.rewards.items():
            self.rewards.setdefault(env, array("d")).extend(values)
        self.counts.update(other.counts)
        self.successes.update(other.successes)
        self.rejects.update(other.rejects)
        for file, envs in other.files.items():
            self.files[file] |= envs

    def best(self) -> dict[str, float]:
        """Each environment's best observed reward (what ``success: max`` resolves to)."""
        return {env: max(values) for env, values in self.rewards.items() if values}

    def rejects_by_env(self) -> Counter:
        out: Counter = Counter()
        for file, count in self.rejects.items():
            envs = self.files.get(file, set())
            out[next(iter(envs)) if len(envs) == 1 else file_environment(file)] += count
        return out

    def summary(self, success: Success, policy: Policy) -> dict[str, Any]:
        """name -> {rollouts, rejected, reward: {min, median, max, mean, distinct}, success_rate, success}.
        Environments whose policy is ``success: max`` are counted here, from their rewards."""
        rejected = self.rejects_by_env()
        out: dict[str, Any] = {}
        for env in sorted(set(self.rewards) | set(rejected)):
            values = sorted(self.rewards.get(env, ()))
            n = len(values)
            entry: dict[str, Any] = {"rollouts": n, "rejected": rejected.get(env, 0)}
            if values:
                entry["reward"] = {
                    "min": values[0],
                    "median": median(values),
                    "max": values[-1],
                    "mean": sum(values) / n,
                    "distinct": len(set(values)),
                }
                if policy.value(env, "success_threshold") == MAX:
                    wins = sum(v >= values[-1] for v in values)
                    entry["success"] = f"reward >= {values[-1]:g} ({MAX_ASSUMPTION})"
                else:
                    wins = self.successes[env]
                    entry["success"] = success.describe(env)
                entry["successes"] = wins
                entry["success_rate"] = wins / n
            out[env] = entry
        return out


def environment_warnings(envs: dict[str, Any], success: Success, policy: Policy) -> list[str]:
    """Warnings on a summary: scales that differ, a global threshold outside an environment's range (one
    without its own), an environment without a single success."""
    if len(envs) < 2:
        return []
    own = {
        env for env in envs if env in dict(success.per_env) or policy.value(env, "success_threshold") == MAX
    }
    ranged = {env: e["reward"] for env, e in envs.items() if "reward" in e}
    warn: list[str] = []
    spans = [r["max"] - r["min"] for r in ranged.values() if r["max"] > r["min"]]
    outside01 = sorted(env for env, r in ranged.items() if r["min"] < 0 or r["max"] > 1)
    mixed = 0 < len(outside01) < len(ranged)  # some on 0..1, some not
    if mixed or (len(spans) > 1 and max(spans) > 2 * min(spans)):
        shown = ", ".join(f"{env} {ranged[env]['min']:g}..{ranged[env]['max']:g}" for env in outside01[:6])
        warn.append(
            f"environments' rewards live on different scales ({shown or 'see environments'}; "
            f"{len(ranged) - len(outside01)} others within 0..1): give each its own success threshold "
            "(--success-threshold NAME=T, or the recipe's environments:)"
        )
    if success.field is None:
        t = success.threshold
        out = sorted(env for env, r in ranged.items() if env not in own and not r["min"] <= t <= r["max"])
        if out:
            listed = ", ".join(f"{env} ({ranged[env]['min']:g}..{ranged[env]['max']:g})" for env in out[:6])
            more = f" and {len(out) - 6} more" if len(out) > 6 else ""
            warn.append(f"the global success threshold {t:g} lies outside the reward range of {listed}{more}")
    none = sorted(env for env, e in envs.items() if e.get("rollouts") and not e.get("successes"))
    if none:
        more = f" and {len(none) - 6} more" if len(none) > 6 else ""
        warn.append(f"no rollout succeeds in {', '.join(none[:6])}{more} (under the success policy in force)")
    return warn
