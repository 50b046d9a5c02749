"""The built-in verifiers against NeMo Gym's own verdicts on real rollouts (../shared; skipped without it)."""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from rollforge.collect.responses import assistant_text
from rollforge.collect.verify import verify


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # placeholder lines
        if isinstance(row, dict) and isinstance(row.get("response"), dict):
            rows.append(row)
    return rows


def test_choice_agrees_with_nemo_gym_mcqa(shared_rollouts: Path) -> None:
    rows = _rows(shared_rollouts / "resources_servers_mcqa.jsonl")
    assert rows
    for row in rows:
        ours = verify("choice", assistant_text(row["response"]), row["expected_answer"])
        assert ours is not None
        if row["extracted_answer"] is not None:  # NeMo Gym's strict \boxed{X} found a letter: same letter
            assert (ours.extracted_answer, ours.reward) == (row["extracted_answer"], row["reward"])
        # Otherwise its strict mode found none (e.g. "\boxed{C: the option's text}"); ours is more lenient.


def test_math_agrees_with_nemo_gym_math_verify(
    shared_rollouts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The verdicts, not the clock: one real answer takes SymPy seconds, past the 10 s limit on a loaded machine.
    monkeypatch.setattr(import_module("rollforge.collect.verify"), "MATH_TIMEOUT_S", 300)
    rows = _rows(shared_rollouts / "resources_servers_math_with_judge.jsonl")
    assert rows
    for row in rows:  # library_reward: math-verify's verdict before any judge
        ours = verify("math", assistant_text(row["response"]), row["expected_answer"])
        assert ours is not None and ours.reward == row["library_reward"]
