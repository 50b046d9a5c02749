"""Near-duplicate detection: MinHash over the assistant text (word 3-gram shingles) with LSH lookup.

Signatures are computed where rollouts are read (in parallel); the keep-first-occurrence pass runs once
over the index in input order, so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollforge.rollout import Rollout
from rollforge.schema import text

NUM_PERM = 64
SHINGLE = 3
SCHEME = "affine32"  # datasketch >= 2 refuses to rebuild a MinHash from hash values without their scheme


def assistant_text(rollout: Rollout) -> str:
    """Reasoning, text and calls of the model's turns. Pipelines hold text as msgspec.Raw: decode it."""
    parts = []
    for msg in rollout.completion:
        if msg["role"] == "assistant":
            parts.append(text(msg.get("reasoning_content")))
            parts.append(text(msg.get("content")))
            parts += [
                c["function"]["name"] + text(c["function"]["arguments"]) for c in msg.get("tool_calls") or ()
            ]
    return " ".join(p for p in parts if p)


def minhash(rollout: Rollout) -> Any:
    """The MinHash signature (a numpy array of NUM_PERM uint64) of a rollout's assistant text."""
    from datasketch import MinHash

    words = assistant_text(rollout).lower().split()
    grams = {" ".join(words[i : i + SHINGLE]).encode() for i in range(max(1, len(words) - SHINGLE + 1))}
    sig = MinHash(num_perm=NUM_PERM, seed=1, scheme=SCHEME)
    sig.update_batch(list(grams))
    return sig.hashvalues


def near_duplicates(signatures: Sequence[Any], kept: list[bool], threshold: float) -> list[int]:
    """Kept rows whose estimated Jaccard with an earlier kept one, not itself a near duplicate, is >= threshold."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    found = []
    for row, values in enumerate(signatures):
        if not kept[row] or values is None:
            continue
        sig = MinHash(num_perm=NUM_PERM, seed=1, hashvalues=values, scheme=SCHEME)
        if any(
            sig.jaccard(MinHash(num_perm=NUM_PERM, seed=1, hashvalues=signatures[int(other)], scheme=SCHEME))
            >= threshold
            for other in lsh.query(sig)
        ):
            found.append(row)
            continue
        lsh.insert(str(row), sig)
    return found
