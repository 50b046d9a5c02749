"""What "success" means, stated explicitly. Real rollouts have no ``success`` field (the tutorial's filter
on it keeps nothing): success is a reward threshold, or a named truthy field such as ``is_correct``."""

from __future__ import annotations

from dataclasses import dataclass

from rollforge.rollout import Rollout


@dataclass(frozen=True, slots=True)
class Success:
    threshold: float = 1.0  # success = reward >= threshold ...
    field: str | None = None  # ... unless a field is named: success = bool(that field), by dotted path

    def __call__(self, rollout: Rollout) -> bool:
        if self.field is not None:
            return bool(rollout.field(self.field))
        return rollout.reward >= self.threshold

    def describe(self) -> str:
        return f"truthy {self.field}" if self.field else f"reward >= {self.threshold:g}"

    @property
    def fields(self) -> tuple[str, ...]:
        """Top-level fields the decoder must keep for this definition."""
        return (self.field.split(".")[0],) if self.field else ()
