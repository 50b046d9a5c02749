"""Review labels flow back into the data: a rejected or flagged rollout is never an SFT row nor the chosen side
of a DPO pair (it may still be a rejected side); ``--labels-keep accept`` keeps only accepted rollouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gym_rollouts import answer, read_jsonl, rollout, write_jsonl

import rollforge
from rollforge.cli.main import main
from rollforge.io.read import read_rollouts
from rollforge.labels import LabelStore
from rollforge.rollout import Rollout


def prompt_group(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """One prompt, three rollouts: best (1.0), good (0.8), bad (0.0); name -> rollout id."""
    rows = [
        rollout("2+2?", [answer("4, surely")], 1.0, task_id="best"),
        rollout("2+2?", [answer("4")], 0.8, task_id="good"),
        rollout("2+2?", [answer("5")], 0.0, task_id="bad"),
    ]
    path = write_jsonl(tmp_path / "runs.jsonl", rows)
    ids = {r.fields["task_id"]: r.rollout_id for r in read_rollouts([path]) if isinstance(r, Rollout)}
    return path, ids


def chosen_and_rejected(path: str, out: Path, **options: object) -> list[tuple[float, float]]:
    rollforge.dpo(path, out, success_threshold=0.5, pairing="all", **options)
    return sorted((row["chosen_reward"], row["rejected_reward"]) for row in read_jsonl(out))


@pytest.mark.parametrize("label", ["flag", "reject"])
def test_a_flagged_or_rejected_rollout_is_never_chosen(tmp_path: Path, label: str) -> None:
    path, ids = prompt_group(tmp_path)
    assert (1.0, 0.0) in chosen_and_rejected(path, tmp_path / "all.jsonl")
    db = tmp_path / "review.sqlite"
    LabelStore(db).set_label(ids["best"], label, "", "alice")
    pairs = chosen_and_rejected(path, tmp_path / "labelled.jsonl", labels=str(db))
    assert pairs and all(chosen != 1.0 for chosen, _ in pairs)
    assert (0.8, 0.0) in pairs


def test_labels_keep_accept_keeps_only_accepted_rollouts(tmp_path: Path) -> None:
    path, ids = prompt_group(tmp_path)
    db = tmp_path / "review.sqlite"
    store = LabelStore(db)
    store.set_label(ids["good"], "accept", "", "alice")
    acc = rollforge.sft(
        path, tmp_path / "sft.jsonl", success_threshold=0.5, labels=str(db), labels_keep="accept"
    )
    assert [row["rollout_id"] for row in read_jsonl(tmp_path / "sft.jsonl")] == [ids["good"]]
    assert acc["filtered"] == {"not_accepted": 2}  # counted under the first filter each fails
    pairs = chosen_and_rejected(path, tmp_path / "dpo.jsonl", labels=str(db), labels_keep="accept")
    assert pairs == [(0.8, 0.0)]  # only the accepted rollout may be chosen; any may be rejected


def test_labels_keep_needs_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = prompt_group(tmp_path)
    assert main(["sft", path, "-o", str(tmp_path / "o.jsonl"), "--labels-keep", "accept"]) == 1
    assert "--labels-keep needs --labels" in capsys.readouterr().err


def test_labels_keep_accept_on_the_real_files(
    shared_rollouts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = [r for r in read_rollouts([str(shared_rollouts)]) if isinstance(r, Rollout)]
    successes = [r for r in real if r.reward >= 1]
    db = tmp_path / "review.sqlite"
    store = LabelStore(db)
    for r in successes[:5]:
        store.set_label(r.rollout_id, "accept", "", "alice")
    store.set_label(successes[5].rollout_id, "flag", "", "alice")
    out = tmp_path / "sft.jsonl"
    argv = [
        "sft",
        str(shared_rollouts),
        "-o",
        str(out),
        "--labels",
        str(db),
        "--labels-keep",
        "accept",
        "--json",
    ]
    assert main(argv) == 0
    acc = json.loads(capsys.readouterr().out)
    kept = {row["rollout_id"] for row in read_jsonl(out)}
    assert kept <= {r.rollout_id for r in successes[:5]} and kept
    assert acc["filtered"]["review_flagged"] == 1
    assert acc["lines"] == acc["written"] + sum(acc["filtered"].values()) + sum(acc["rejected"].values())
