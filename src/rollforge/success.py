"""What "success" means, stated explicitly. Real rollouts have no ``success`` field (the tutorial's filter
on it keeps nothing): success is a reward threshold, or a named truthy field such as ``is_correct``. In a
corpus of many environments each may have its own threshold (``rollforge.environments``): sokoban is solved
at 10, a verifier at 1.0."""

from __future__ import annotations

from dataclasses import dataclass

from rollforge.environments import MAX_ASSUMPTION, environment_of
from rollforge.rollout import Look


@dataclass(frozen=True, slots=True)
class Success:
    threshold: float = 1.0  # success = reward >= threshold ...
    field: str | None = None  # ... unless a field is named: success = bool(that field), by dotted path
    per_env: tuple[tuple[str, float], ...] = ()  # environment -> its own threshold (others: ``threshold``)
    env_field: str | None = None  # where a rollout names its environment (rollforge.environments)
    observed_max: tuple[str, ...] = ()  # environments whose threshold is their best observed reward

    def __call__(self, rollout: Look) -> bool:
        if self.field is not None:
            return bool(rollout.field(self.field))
        return rollout.reward >= self.threshold_of(rollout)

    def threshold_of(self, rollout: Look) -> float:
        if not self.per_env:
            return self.threshold
        return self.for_env(environment_of(rollout, self.env_field))

    def for_env(self, env: str) -> float:
        return dict(self.per_env).get(env, self.threshold)

    def describe(self, env: str | None = None) -> str:
        if self.field:
            return f"truthy {self.field}"
        if env is not None:
            text = f"reward >= {self.for_env(env):g}"
            return f"{text} ({MAX_ASSUMPTION})" if env in self.observed_max else text
        return f"reward >= {self.threshold:g}" + "".join(
            f"; {name}: reward >= {t:g}" + (" (max)" if name in self.observed_max else "")
            for name, t in self.per_env
        )

    @property
    def fields(self) -> tuple[str, ...]:
        """Top-level fields the decoder must keep for this definition."""
        roots = [self.field.split(".")[0]] if self.field else []
        if self.env_field:
            roots.append(self.env_field.split(".")[0])
        return tuple(roots)
