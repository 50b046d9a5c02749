"""What one input line may hold: its length, its nesting depth and its numbers. A line past a limit is
rejected on its own (``line_too_long``, ``too_deep``, ``number_out_of_range``); the run goes on.

The limits are fixed numbers, not whatever the decoder's stack allows where it runs: the same line gets
the same verdict in every command and every process.
"""

from __future__ import annotations

import itertools
import re
from array import array
from typing import Any

from rollforge.errors import RollforgeError
from rollforge.rollout import Unconvertible

DEFAULT_MAX_LINE_BYTES = 256 << 20  # far above real rollouts (a long agent run with token ids is a few MB)
# Deeper than any real rollout, and well inside what msgspec, orjson (1024) and Python's json module (about
# 1000, the recursion limit) can decode wherever they run, so no reader of our output meets a deeper line.
MAX_DEPTH = 512
# Integers every JSON reader a dataset meets holds exactly (orjson and Arrow: 64 bits).
INT_RANGE = (-(1 << 63), (1 << 64) - 1)

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_DIGITS_AS_NINES = bytes.maketrans(b"0123456789", b"9" * 10)
_LONG_DIGITS = b"9" * 19  # an integer of fewer digits is always inside INT_RANGE


def too_deep(line: bytes) -> bool:
    """Whether the line nests arrays/objects more than MAX_DEPTH levels. Counting the opening brackets is
    a cheap bound (real lines pass it); only a line with more of them is measured, strings left out."""
    if line.count(b"[") + line.count(b"{") <= MAX_DEPTH:
        return False
    brackets = _STRING.sub(b"", line).translate(None, _NOT_BRACKET)
    steps = array("b", brackets.translate(_STEP))  # +1 for an opening bracket, -1 for a closing one
    return max(itertools.accumulate(steps), default=0) > MAX_DEPTH


def check_numbers(value: Any, raw: bytes, where: str) -> None:
    """Raise ``number_out_of_range`` if ``value`` (decoded from ``raw``) holds an integer past 64 bits."""
    if _LONG_DIGITS not in bytes(raw).translate(_DIGITS_AS_NINES):  # 3x faster than a regular expression
        return
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not INT_RANGE[0] <= item <= INT_RANGE[1]:
            raise Unconvertible("number_out_of_range", f"{where} hold an integer past 64 bits")


def out_of_range(error: object) -> bool:
    """Whether a msgspec error (or its text) is a number past float range (``1e400``)."""
    return "out of range" in str(error)


def parse_size(text: str) -> int:
    """A byte count: ``1048576``, ``512K``, ``256M``, ``1G`` (binary units)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, re.IGNORECASE)
    if not match or int(match.group(1)) < 1:
        raise RollforgeError(f"not a size in bytes: {text!r}", hint="e.g. 1048576, 512K, 256M or 1G")
    return int(match.group(1)) * units[match.group(2).upper()]
