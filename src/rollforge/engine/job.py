"""What a run must compute for each rollout, as a picklable description shared by every worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import xxhash

from rollforge.decode import LineDecoder
from rollforge.environments import environment_of
from rollforge.errors import RollforgeError
from rollforge.export.formats import TRL, Format
from rollforge.export.kto import Labels
from rollforge.export.messages import Styling
from rollforge.filters import FilterOptions
from rollforge.pairs import Pairing
from rollforge.rollout import Rollout


@dataclass(frozen=True)
class Stratum:
    """Rewards in [low, high) get ``count`` rows of the review sample."""

    low: float
    high: float
    count: int

    def holds(self, reward: float) -> bool:
        return self.low <= reward < self.high

    @property
    def name(self) -> str:
        return f"[{self.low:g}, {self.high:g})"


# The tutorial's strata: 10 below 0.5, 20 in [0.5, 0.8), 20 at or above 0.8.
DEFAULT_STRATA = (Stratum(-float("inf"), 0.5, 10), Stratum(0.5, 0.8, 20), Stratum(0.8, float("inf"), 20))


def parse_strata(text: str | None) -> tuple[Stratum, ...]:
    """'0.5:10,0.8:20,inf:20' -> rewards below 0.5: 10, [0.5, 0.8): 20, >= 0.8: 20 (upper bound:count)."""
    if not text:
        return DEFAULT_STRATA
    strata, low = [], -float("inf")
    try:
        for part in text.split(","):
            bound, count = part.split(":")
            high = float(bound)
            if high <= low:
                raise ValueError("bounds must increase")
            strata.append(Stratum(low, high, int(count)))
            low = high
    except ValueError as exc:
        raise RollforgeError(f"--strata {text!r}: {exc}", hint="e.g. --strata 0.5:10,0.8:20,inf:20") from None
    return tuple(strata)


@dataclass(frozen=True)
class Output:
    """A dataset to render: a trainer format, and where reasoning goes (None: the format's default)."""

    format: Format = TRL
    reasoning: str | None = None

    @cached_property
    def styling(self) -> Styling:
        return self.format.styling(self.reasoning)


@dataclass(frozen=True)
class Job:
    filters: FilterOptions = field(default_factory=FilterOptions)
    sft: tuple[Output, ...] = ()  # render an SFT row per format for each rollout that passes the filters
    dpo: tuple[Output, ...] = ()  # render DPO pieces per format for each rollout with an assistant turn
    pairing: Pairing = field(default_factory=Pairing)  # how DPO outputs pair
    strata: tuple[Stratum, ...] = ()  # non-empty: collect a review sample
    sample_by_env: bool = False  # draw each stratum within each environment (a stratum per environment)
    seed: int = 0
    labels: Labels = field(default_factory=Labels)  # KTO: which kept rollouts are desirable, undesirable
    statistics: bool = True  # keep the inventory's per-rollout values (inspect, build); False: counts only

    @property
    def arguments(self) -> str:
        """Arguments must be JSON objects unless every output keeps them as strings (OpenAI's format)."""
        modes = {o.format.arguments for o in (*self.sft, *self.dpo)}
        return "string" if modes == {"string"} else "object"

    @property
    def head_first(self) -> bool:
        """Rollouts dropped by cheap filters need no conversion when nothing else needs their prompt."""
        only_sft = bool(self.sft) and not self.dpo and not self.strata
        return only_sft and not self.filters.judged_per_prompt

    def decoder(self) -> LineDecoder:
        return LineDecoder(extra_fields=self.filters.fields, arguments=self.arguments, lazy_text=True)

    def key(self, rollout_id: str) -> int:
        """A seeded pseudo-random number per rollout: random choices that do not depend on input order."""
        return xxhash.xxh3_64_intdigest(f"{self.seed}:{rollout_id}".encode())


def to_record(rollout: Rollout, env: str | None = None) -> dict[str, Any]:
    """What exporters need of a rollout (``env``: its environment, by default the default rule's); spilled
    to disk between the read and the write."""
    return {
        "messages": rollout.messages,
        "tools": rollout.tools,
        "prompt_len": rollout.prompt_len,
        "reward": rollout.reward,
        "prompt_id": rollout.prompt_id,
        "rollout_id": rollout.rollout_id,
        "task_type": rollout.task_type,
        "env": env if env is not None else environment_of(rollout),
    }


def validation_split(seed: int, prompt_id: str, fraction: float) -> bool:
    """True when the prompt goes to validation. By prompt, so no prompt is in both splits."""
    if fraction <= 0:
        return False
    return xxhash.xxh3_64_intdigest(f"split:{seed}:{prompt_id}".encode()) / 2**64 < fraction
