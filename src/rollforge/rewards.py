"""The reward of a line: a finite number (ints and booleans too); anything else is a reject reason."""

from __future__ import annotations

import math
from typing import Any

import msgspec


def reward_of(value: Any) -> tuple[float, str | None]:
    if value is None or value is msgspec.UNSET:
        return 0.0, "no_reward"
    if isinstance(value, bool):
        return float(value), None
    if not isinstance(value, int | float):
        return 0.0, "bad_reward"
    try:
        number = float(value)
    except OverflowError:
        return 0.0, "bad_reward"
    return (number, None) if math.isfinite(number) else (0.0, "bad_reward")
