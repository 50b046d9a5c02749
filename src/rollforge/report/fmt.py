"""Number formatting shared by the HTML, the terminal summary and the checklist texts, so all three agree."""

from __future__ import annotations

import math
from typing import Any


def count(n: int) -> str:
    return f"{n:,}"


def pct(x: float) -> str:
    return f"{x:.1%}"


def num(x: Any) -> str:
    """An int with thousands separators; a float to 4 significant digits, or whole with separators from 1,000."""
    if x is None:
        return "–"
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    if isinstance(x, int):
        return count(x)
    if math.isnan(x):
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"
