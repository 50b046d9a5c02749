"""The sequence length a trainer should be given for a set of rows: TRL's ``max_length``, NeMo RL's
``policy.max_total_sequence_length``. A row longer than it is cut: TRL truncates an SFT row and drops a DPO pair
whose prompt fills it; NeMo RL trains a cut row with ``loss_multiplier=0``.

With ``--max-tokens`` the rows were filtered at that length, so the length covers every row up to it (DPO
rejected sides are not filtered: a pair longer than the limit is cut and counted). Without it, the length is
the 99th percentile, so one runaway row does not set the memory of the whole run; the rows above it are
counted, and a report or build says how many would be cut.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

import numpy as np

from rollforge.report.tokens import ESTIMATE_LABEL

PERCENTILE = 0.99


def sequence_length(lengths: array | np.ndarray, max_tokens: int | None) -> dict[str, Any] | None:
    """``tokens`` to set, the ``rule`` that chose it, the ``longest`` row and the ``cut`` rows beyond it."""
    values = np.asarray(lengths, dtype=np.int64)
    if not len(values):
        return None
    longest = int(values.max())
    if max_tokens is not None:
        tokens, rule = min(longest, max_tokens), "max_tokens"
    else:
        rank = math.ceil(PERCENTILE * len(values))  # nearest rank: at most 1% of the rows lie above it
        tokens, rule = int(np.partition(values, rank - 1)[rank - 1]), "p99"
    return {
        "tokens": tokens,
        "rule": rule,
        "longest": longest,
        "rows": len(values),
        "cut": int((values > tokens).sum()),
    }


def describe_length(entry: dict[str, Any], what: str = "rows") -> str:
    """One line: '2,345 tokens: every one of 400 rows fits' or '2,345 tokens, the 99th percentile (no
    --max-tokens given): cuts 3 of 400 rows, the longest has 5,120'."""
    head = f"{entry['tokens']:,} tokens"
    if not entry["cut"]:
        return f"{head}: every one of {entry['rows']:,} {what} fits"
    rule = (
        "the 99th percentile (no --max-tokens given)" if entry["rule"] == "p99" else "the --max-tokens limit"
    )
    return f"{head}, {rule}: cuts {entry['cut']:,} of {entry['rows']:,} {what}, the longest has {entry['longest']:,}"


def counted_note(label: str) -> str:
    """How the lengths were counted, and what to do when it was only an estimate."""
    if label == ESTIMATE_LABEL:
        return f"Counted as {label}: it ignores the chat template's own tokens; build with --tokenizer for real counts."
    return f"Counted as {label}."
