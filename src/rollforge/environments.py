"""Which environment a rollout comes from, and each environment's own policy.

NeMo Gym trains on many environments at once and their rewards live on different scales (sokoban -2..10,
tetris -0.8..19.4, most verifiers 0..1), so one global threshold means nothing across them. A rollout's
environment is ``agent_ref.name`` when the line has one, else the stem of its rollouts file (NeMo Gym writes
one file per environment); ``--env-field PATH`` names another field (a line without it falls back to the
rule above).

The policy is a map NAME -> :class:`EnvRule` (the recipe's ``environments:``; the CLI's ``--success-threshold
NAME=T`` and ``--mix NAME=WEIGHT`` fill the same map). The entry ``default`` applies to every environment
not named. ``success_threshold: max`` (or ``success: max``) means success is the best reward observed in the
environment, for environments whose top reward means solved: it is resolved on the data before the run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import xxhash

from rollforge.errors import RollforgeError
from rollforge.io.sources import split_name
from rollforge.rollout import Look

DEFAULT = "default"
MAX = "max"
MAX_ASSUMPTION = (
    "success = the best reward observed in the environment (assumes its top reward means solved; wrong "
    "where no rollout solved the task)"
)


def file_environment(path: str) -> str:
    """The environment a rollouts file holds when its lines do not say: the file's stem."""
    if path in ("-", "") or path.startswith("<"):
        return "stdin"
    return split_name(os.path.basename(path.rstrip("/")))[0] or path


def environment_of(look: Look, env_field: str | None = None) -> str:
    """``env_field``'s value when given and present, else ``agent_ref.name``, else the file's stem."""
    if env_field:
        value = look.field(env_field)
        if value is not None and value != "":
            return value if isinstance(value, str) else str(value)
    decoded = getattr(look, "decoded", None)  # a first look: read the one field, not every field
    agent = getattr(decoded, "agent_ref", None) if decoded is not None else look.fields.get("agent_ref")
    if isinstance(agent, dict) and isinstance(agent.get("name"), str) and agent["name"]:
        return str(agent["name"])
    return file_environment(getattr(look, "file", ""))


def env_code(name: str) -> int:
    """The 64-bit code a run's index keeps for an environment (its names are kept once, beside it)."""
    return xxhash.xxh3_64_intdigest(name.encode())


@dataclass(frozen=True)
class EnvRule:
    """One environment's policy; None leaves the global setting in force."""

    success_threshold: float | str | None = None  # a number, or "max" (resolved on the data)
    min_reward: float | None = None
    max_rollouts: int | None = None
    weight: float | None = None  # its share of the mix (--mix), relative to the other weights
    observed_max: bool = False  # the threshold was "max", resolved to this environment's best reward


KEYS = tuple(f.name for f in fields(EnvRule) if f.name != "observed_max")


def _number(name: str, key: str, value: Any, integer: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RollforgeError(f"environments: {name}.{key} must be a number (got {value!r})")
    if integer and int(value) != value:
        raise RollforgeError(f"environments: {name}.{key} must be a whole number (got {value!r})")
    return int(value) if integer else float(value)


def rule_of(name: str, entry: Any) -> EnvRule:
    """An :class:`EnvRule` from a recipe entry (``{success_threshold: 10, weight: 0.3}``), checked."""
    if not isinstance(entry, Mapping):
        raise RollforgeError(
            f"environments: {name!r} must map keys to values, got {entry!r}",
            hint=f"e.g. environments: {{{name}: {{success_threshold: 1.0, weight: 0.5}}}}",
        )
    entry = dict(entry)
    if "success" in entry:  # `success: max`, the explicit policy
        entry.setdefault("success_threshold", entry.pop("success"))
    unknown = sorted(set(entry) - {*KEYS, "observed_max"})
    if unknown:
        raise RollforgeError(
            f"environments: {name}: unknown key {unknown[0]!r}", hint=f"keys: {', '.join(KEYS)}, success: max"
        )
    threshold = entry.get("success_threshold")
    if threshold is not None and threshold != MAX:
        threshold = _number(name, "success_threshold", threshold)
    min_reward = entry.get("min_reward")
    cap, weight = entry.get("max_rollouts"), entry.get("weight")
    rule = EnvRule(
        success_threshold=threshold,
        min_reward=None if min_reward is None else _number(name, "min_reward", min_reward),
        max_rollouts=None if cap is None else int(_number(name, "max_rollouts", cap, integer=True)),
        weight=None if weight is None else _number(name, "weight", weight),
        observed_max=bool(entry.get("observed_max", False)),
    )
    if rule.max_rollouts is not None and rule.max_rollouts < 1:
        raise RollforgeError(f"environments: {name}.max_rollouts must be at least 1 (got {cap!r})")
    if rule.weight is not None and rule.weight < 0:
        raise RollforgeError(f"environments: {name}.weight must be >= 0 (got {weight!r})")
    return rule


@dataclass(frozen=True)
class Policy:
    """Every environment's rule, ``default`` for the others (empty: the global settings everywhere)."""

    rules: tuple[tuple[str, EnvRule], ...] = ()

    @classmethod
    def of(cls, value: Mapping[str, Any] | None) -> Policy:
        if not value:
            return cls()
        if not isinstance(value, Mapping):
            raise RollforgeError(f"environments: a map of NAME -> settings, got {type(value).__name__}")
        return cls(tuple(sorted((str(name), rule_of(str(name), entry)) for name, entry in value.items())))

    def rule(self, env: str) -> EnvRule:
        named = dict(self.rules)
        return named.get(env) or named.get(DEFAULT) or EnvRule()

    def value(self, env: str, key: str) -> Any:
        """``key`` of ``env``'s rule, else of the default entry (None: the global setting holds)."""
        named = dict(self.rules)
        for name in (env, DEFAULT):
            if name in named and getattr(named[name], key) is not None:
                return getattr(named[name], key)
        return None

    def any(self, key: str) -> bool:
        return any(getattr(rule, key) is not None for _, rule in self.rules)

    @property
    def wants_max(self) -> bool:
        return any(rule.success_threshold == MAX for _, rule in self.rules)

    @property
    def weights(self) -> dict[str, float]:
        """The mix: named environments with a weight (``default``'s weight goes to each one not named)."""
        return {name: rule.weight for name, rule in self.rules if rule.weight is not None}


def check_environments(value: Any) -> None:
    """The option's check: a recipe's or the flags' map, refused with a message naming the key."""
    Policy.of(value)


def merge_environments(*maps: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Later maps' keys win per environment and per key (a flag's NAME=T over a recipe's entry)."""
    merged: dict[str, dict[str, Any]] = {}
    for each in maps:
        for name, entry in (each or {}).items():
            if not isinstance(entry, Mapping) or not isinstance(merged.get(str(name), {}), Mapping):
                merged[str(name)] = entry  # type: ignore[assignment]  # refused by Policy.of, with its name
            else:
                merged.setdefault(str(name), {}).update(entry)
    return merged
