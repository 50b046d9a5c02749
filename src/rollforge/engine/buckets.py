"""DPO pairing under a memory budget: candidates are spilled to bucket files by prompt hash, then each
bucket is grouped and paired on its own, so the grouping state in memory is one bucket at a time.

Every rollout of a prompt lands in the same bucket (the bucket is a function of the prompt id), so each
bucket holds whole groups and the pairs are exactly those of the in-memory path, in the same order.
"""

from __future__ import annotations

import math
import os
import struct
from collections import Counter
from typing import Any

from rollforge.engine.index import RowIndex
from rollforge.engine.job import Job
from rollforge.engine.select import DpoSelection, eligible_rows, scaled_pairing
from rollforge.pairs import Candidate, Pair, Pairing
from rollforge.reasons import REASON_CODES

# prompt, row, reward, reason code, eligible (may be chosen), trajectory, key
RECORD = struct.Struct("<QQdbbQQQ")
CANDIDATE_BYTES = 400  # what a grouped candidate costs in Python objects, measured roughly


def needs_buckets(index: RowIndex, budget_mb: float | None) -> bool:
    return budget_mb is not None and len(index) * CANDIDATE_BYTES > budget_mb * 2**20


def select_dpo_bucketed(index: RowIndex, job: Job, budget_mb: float, spill_dir: str) -> DpoSelection:
    buckets = max(2, math.ceil(len(index) * CANDIDATE_BYTES / (budget_mb * 2**20)) * 2)
    paths = [os.path.join(spill_dir, f"dpo-bucket-{b:04d}.bin") for b in range(buckets)]
    _spill_candidates(index, eligible_rows(index, job), paths)
    result = DpoSelection(prompts=0)
    pairing = scaled_pairing(index, job)
    ordered: list[tuple[int, int, Pair]] = []  # (first row of the prompt, position, pair)
    for path in paths:
        for first, pairs, reason in _pair_bucket(path, pairing):
            result.prompts += 1
            if reason:
                result.unpaired[reason] += 1
            ordered += [(first, i, pair) for i, pair in enumerate(pairs)]
        os.unlink(path)
    ordered.sort(key=lambda item: (item[0], item[1]))
    result.pairs.extend(pair for _, _, pair in ordered)
    result.unpaired += Counter()
    return result


def _spill_candidates(index: RowIndex, eligible: Any, paths: list[str]) -> None:
    files = [open(path, "wb", buffering=1 << 16) for path in paths]  # noqa: SIM115 (closed below)
    eligible = eligible.tolist()  # a list: indexing a numpy array element by element is far slower
    try:
        for row in range(len(index)):
            prompt = index.prompt[row]
            record = RECORD.pack(
                prompt,
                row,
                index.reward[row],
                index.reason[row],
                eligible[row],
                index.trajectory[row],
                index.key[row],
                index.env[row] if len(index.env) else 0,
            )
            files[prompt % len(files)].write(record)
    finally:
        for fh in files:
            fh.close()


def _pair_bucket(path: str, pairing: Pairing) -> list[tuple[int, list[Pair], str | None]]:
    with open(path, "rb") as fh:
        data = fh.read()
    groups: dict[int, list[tuple[int, float, int, int, int, int, int]]] = {}
    for prompt, row, reward, reason, eligible, trajectory, key, env in RECORD.iter_unpack(data):
        groups.setdefault(prompt, []).append((row, reward, reason, eligible, trajectory, key, env))
    out: list[tuple[int, list[Pair], str | None]] = []
    no_turn = REASON_CODES["no_assistant_turn"]
    for members in groups.values():
        members.sort()
        cands = [
            Candidate(row, reward, bool(eligible), trajectory, key, env)
            for row, reward, reason, eligible, trajectory, key, env in members
            if reason != no_turn
        ]
        if not cands:
            out.append((members[0][0], [], "no_assistant_turn"))
            continue
        pairs, why = pairing.pair(cands)
        out.append((cands[0].row, pairs, why))
    return out
