"""Rollouts that repeat an earlier line byte for byte: `inspect` counts them and names their files, a release
never holds the same rollout twice (exact dedup is on by default, reason `duplicate`; `--dedup off` keeps
every copy), `sample` never draws one twice, and DPO never pairs a copy with itself or repeats a pair.

The corpus is the real NeMo Gym rollouts (../shared, skipped when absent), copied into a temporary folder
with some of their lines repeated, within a file and across files; what counts as a repeat is computed from
the raw bytes with plain Python."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from rollforge import api
from rollforge.cli.main import main
from rollforge.pairs import Candidate, pair_group


def raw_repeats(folder: Path, rejected: set[tuple[str, int]]) -> Counter[str]:
    """Per file, the rollout lines whose stripped bytes an earlier line (any file, read in name order) has."""
    seen: set[bytes] = set()
    found: Counter[str] = Counter()
    for path in sorted(folder.glob("*.jsonl")):
        for n, raw in enumerate(path.read_bytes().splitlines(), 1):
            line = raw.strip()
            if not line or (str(path), n) in rejected:
                continue
            if line in seen:
                found[str(path)] += 1
            seen.add(line)
    return found


@pytest.fixture
def corpus(shared_rollouts: Path, tmp_path: Path) -> Path:
    """The real files, plus repeats: a whole file appended to another, and the first lines of a file again
    at its own end."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    files = sorted(shared_rollouts.glob("*.jsonl"))
    for path in files:
        shutil.copy(path, folder / path.name)
    first, second = folder / files[0].name, folder / files[-1].name
    with first.open("ab") as fh:  # a file collected twice: every line of `second` again, in `first`
        fh.write(second.read_bytes())
    lines = second.read_bytes().splitlines(keepends=True)
    with second.open("ab") as fh:  # a resumed run that wrote its first lines again
        fh.write(b"".join(lines[:2]))
    return folder


def test_inspect_counts_repeats_and_names_their_files(corpus: Path, capsys: pytest.CaptureFixture) -> None:
    summary = api.inspect(corpus, workers=2)
    rejected = {(r["file"], r["line"]) for r in summary["rejected"]}
    expected = raw_repeats(corpus, rejected)
    assert sum(expected.values()) >= 3
    assert summary["duplicates"] == {"count": sum(expected.values()), "files": dict(sorted(expected.items()))}
    assert any("repeat an earlier line" in w and "--dedup" in w for w in summary["warnings"])
    assert main(["inspect", str(corpus), "-q"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "duplicates" in line)
    assert row.split()[-2:] == [str(sum(expected.values())), "│"]


def test_the_real_files_repeats_are_counted(shared_rollouts: Path) -> None:
    """Measured on the real folder as it is (the 22 shared files hold none today; held-back corpora do)."""
    summary = api.inspect(shared_rollouts)
    rejected = {(r["file"], r["line"]) for r in summary["rejected"]}
    assert summary["duplicates"]["count"] == sum(raw_repeats(shared_rollouts, rejected).values())


def _sft_rows(release: Path) -> list[dict]:
    return [
        json.loads(line)
        for split in ("train", "validation")
        for line in (release / "sft" / f"{split}.jsonl").open()
    ]


def test_a_release_of_the_real_files_holds_no_duplicate_rollout(corpus: Path, tmp_path: Path) -> None:
    release = api.build(
        inputs=[str(corpus)], output=str(tmp_path / "releases"), success_only=False, workers=2
    )
    rows = _sft_rows(release.path)
    ids = Counter(row["rollout_id"] for row in rows)
    assert rows and max(ids.values()) == 1
    conversations = Counter(json.dumps([row["messages"], row["tools"]], sort_keys=True) for row in rows)
    assert max(conversations.values()) == 1
    accounting = release.manifest["accounting"]["sft"]
    assert accounting["filtered"]["duplicate"] >= 3
    sample = (release.path / "review" / "sample.jsonl").read_bytes().splitlines()
    assert len(sample) == len(set(sample))
    pairs = [
        line for split in ("train", "validation") for line in (release.path / "dpo" / f"{split}.jsonl").open()
    ]
    assert len(pairs) == len(set(pairs))

    # the opt-out keeps every copy: the check above is not vacuous
    kept = api.build(
        inputs=[str(corpus)], output=str(tmp_path / "releases"), success_only=False, dedup="off", workers=2
    )
    ids = Counter(row["rollout_id"] for row in _sft_rows(kept.path))
    assert max(ids.values()) >= 2
    assert "duplicate" not in kept.manifest["accounting"]["sft"]["filtered"]


def test_sft_drops_repeats_by_default_and_keeps_them_when_asked(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    acc = api.sft(corpus, out, workers=2)
    ids = Counter(json.loads(line)["rollout_id"] for line in out.open())
    assert max(ids.values()) == 1 and acc["filtered"]["duplicate"] >= 3
    assert acc["lines"] == acc["written"] + sum(acc["filtered"].values()) + sum(acc["rejected"].values())
    acc = api.sft(corpus, out, dedup="off", workers=2)
    assert "duplicate" not in acc["filtered"]
    assert max(Counter(json.loads(line)["rollout_id"] for line in out.open()).values()) >= 2


def test_sample_never_draws_a_rollout_twice(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "sample.jsonl"
    for workers in (1, 3):  # the repeats sit in one chunk, or in several
        api.sample(corpus, out, strata="inf:1000", workers=workers)
        lines = [line.strip() for line in out.read_bytes().splitlines()]
        distinct = {
            line.strip() for path in corpus.glob("*.jsonl") for line in path.read_bytes().splitlines()
        }
        assert len(lines) == len(set(lines))
        assert set(lines) <= distinct


def test_dpo_pairs_one_copy_of_a_repeated_rollout() -> None:
    good, copy, bad = (
        Candidate(0, 1.0, True, 11, 5),
        Candidate(1, 1.0, True, 11, 5),
        Candidate(2, 0.0, True, 22, 7),
    )
    pairs, _ = pair_group([good, copy, bad], "all", 0.1)
    assert [(c.row, r.row) for c, r in pairs] == [(0, 2)]
    assert pair_group([good, copy], "all", 0.1) == ([], "single_rollout")
