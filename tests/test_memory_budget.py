"""DPO grouping under --memory-budget spills candidates to bucket files by prompt; the pairs, their order and
the accounting are exactly those of the in-memory grouping."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollforge.engine.choose import Engine
from rollforge.filters import FilterOptions
from rollforge.pipeline import DpoOptions, make_dpo


@pytest.mark.parametrize("pairing", ["best-worst", "best-random", "all"])
@pytest.mark.parametrize("rate", [None, 0.3])
def test_bucketed_grouping_matches_in_memory(examples_dir: Path, tmp_path: Path, pairing: str, rate) -> None:
    filters = FilterOptions(min_task_success_rate=rate)
    opts = DpoOptions(pairing=pairing)
    memory = make_dpo([str(examples_dir)], str(tmp_path / "a.jsonl"), filters, opts, engine=Engine(workers=1))
    budget = Engine(workers=1, memory_budget=0.01)  # 10 KB: forces many buckets
    bucketed = make_dpo([str(examples_dir)], str(tmp_path / "b.jsonl"), filters, opts, engine=budget)
    assert bucketed == memory
    assert memory["pairs"] > 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert not list(tmp_path.glob(".rollforge-spill-*")), "bucket files and spill dirs are cleaned up"
