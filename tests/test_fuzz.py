"""Issue 14's fuzz test: seeded mutations of the real NeMo Gym lines (types, numbers, nesting, bytes,
truncation) through inspect, sft, dpo and build in process. No exception escapes, every command's accounting
adds up, and each line gets the same outcome (a rollout, or rejected with the same reason) in every command.
Skips when ../shared is absent."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fuzz_mutations import mutated_lines

from rollforge.build.recipe import make_recipe
from rollforge.build.release import build
from rollforge.engine.choose import Engine
from rollforge.filters import FilterOptions
from rollforge.pipeline import make_dpo, make_sft, take_inventory
from rollforge.reasons import REJECT_REASONS

COUNT, SEED = 3000, 14


@pytest.fixture(scope="module")
def fuzzed(shared_rollouts: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counter]:
    """The real lines, then COUNT mutations of them, in one file; and how many of each mutation."""
    real = [line for f in sorted(shared_rollouts.glob("*.jsonl")) for line in f.read_bytes().splitlines()
            if line.strip()]  # fmt: skip
    mutations = mutated_lines(real, COUNT, SEED)
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in [*real, *(line for _, line in mutations)]))
    return path, Counter(name for name, _ in mutations)


def by_line(rejects: list[Any]) -> dict[int, str]:
    return {r.line if hasattr(r, "line") else r["line"]: r.reason if hasattr(r, "reason") else r["reason"]
            for r in rejects}  # fmt: skip


def test_mutated_real_lines(
    fuzzed: tuple[Path, Counter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, kinds = fuzzed
    assert set(kinds) == {"type", "number", "nesting", "delete", "surrogate", "bytes", "truncation"}
    scans: list[Any] = []  # each command's read, for its per-line rejects
    real_scan = Engine.scan
    monkeypatch.setattr(
        Engine, "scan", lambda self, *a, **k: scans.append(real_scan(self, *a, **k)) or scans[-1]
    )

    inventory = take_inventory([str(path)], workers=1)
    assert inventory["lines"] == inventory["rollouts"] + len(inventory["rejected"])
    outcomes = {"inspect": by_line(inventory["rejected"])}

    sft = make_sft([str(path)], str(tmp_path / "sft.jsonl"), FilterOptions(success_only=True), workers=2)
    assert sft["lines"] == sft["written"] + sum(sft["filtered"].values()) + sum(sft["rejected"].values())
    outcomes["sft"] = by_line(scans[-1].inventory.rejected)

    dpo = make_dpo([str(path)], str(tmp_path / "dpo.jsonl"), workers=1)
    assert dpo["lines"] == dpo["rollouts"] + sum(dpo["rejected"].values())
    outcomes["dpo"] = by_line(scans[-1].inventory.rejected)

    release = build(make_recipe({"inputs": [str(path)], "output": str(tmp_path / "rel"), "workers": 1}))
    acc = release.manifest["accounting"]
    assert acc["lines"] == acc["sft"]["written"] + sum(acc["sft"]["filtered"].values()) + sum(
        acc["rejected"].values()
    )
    rejected = [
        msgspec.json.decode(line) for line in (release.path / "rejected.jsonl").read_bytes().splitlines()
    ]
    outcomes["build"] = by_line(rejected)

    for command in ("sft", "dpo", "build"):
        assert outcomes[command] == outcomes["inspect"], command
    for summary in (sft, dpo, acc):
        assert summary["lines"] == inventory["lines"]
    reasons = Counter(outcomes["inspect"].values())
    assert set(reasons) <= set(REJECT_REASONS)
    assert {"too_deep", "number_out_of_range", "invalid_json", "malformed_item"} <= set(reasons)
    assert inventory["rollouts"] > 110  # many mutations leave a usable rollout: they are kept, not rejected
