"""Inputs that are not rollouts are refused up front, with one line naming what they look like and what to do,
by every command that reads rollouts; the real NeMo Gym files are still read as rollouts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from gym_rollouts import answer, rollout, write_jsonl

from rollforge.cli.main import main
from rollforge.errors import RollforgeError
from rollforge.review.index import RolloutIndex

CHAT = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
SHAREGPT = {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]}
PREFERENCE = {"prompt": [{"role": "user", "content": "2+2?"}], "chosen": "4", "rejected": "5"}
TASK = {"responses_create_params": {"input": "2+2?"}, "expected_answer": "4"}

KINDS = [
    (CHAT, "looks like chat SFT rows (messages), not rollouts", "rollforge report"),
    (SHAREGPT, "looks like chat SFT rows (messages), not rollouts", "rollforge report"),
    (PREFERENCE, "looks like preference rows (chosen/rejected), not rollouts", "rollforge review"),
    (TASK, "looks like NeMo Gym task rows with no response, not rollouts", "rollforge collect"),
]


def commands(path: str, out: Path) -> list[list[str]]:
    return [
        ["inspect", path],
        ["sft", path, "-o", str(out / "sft.jsonl")],
        ["dpo", path, "-o", str(out / "dpo.jsonl")],
        ["sample", path, "-o", str(out / "sample.jsonl")],
        ["build", path, "-o", str(out / "releases")],
        ["compare", path, path],
    ]


@pytest.mark.parametrize(("row", "looks", "todo"), KINDS)
def test_every_reading_command_refuses_another_kind_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: dict, looks: str, todo: str
) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [row] * 3)
    for argv in commands(path, tmp_path):
        assert main([*argv, "-q"] if argv[0] != "compare" else argv) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{path} {looks}" in err and todo in err, (argv, err)
        assert "Traceback" not in err
    assert not (tmp_path / "releases").exists() and not (tmp_path / "sft.jsonl").exists()
    with pytest.raises(RollforgeError, match=re.escape(looks)):
        RolloutIndex.load([path])  # review of rollouts


def test_a_directory_is_refused_on_its_first_file_of_another_kind(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    write_jsonl(tmp_path / "runs" / "a.jsonl", [rollout("2+2?", [answer("4")])])
    write_jsonl(tmp_path / "runs" / "b.jsonl", [TASK])
    with pytest.raises(RollforgeError, match=r"b\.jsonl looks like NeMo Gym task rows"):
        import rollforge

        rollforge.sft(str(tmp_path / "runs"), tmp_path / "out.jsonl")


def test_rollouts_among_other_rows_are_read_as_rollouts(tmp_path: Path) -> None:
    """A rollouts file with a few odd rows first is not refused: the odd rows are rejected, one by one."""
    import rollforge

    path = write_jsonl(tmp_path / "mixed.jsonl", [CHAT, TASK, rollout("2+2?", [answer("4")])])
    acc = rollforge.sft(path, tmp_path / "out.jsonl")
    assert acc["lines"] == 3 and acc["written"] == 1 and sum(acc["rejected"].values()) == 2


def test_a_release_directory_is_not_read_as_rollouts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: `sft RELEASE` quietly read the release's review/sample.jsonl and wrote its rows."""
    release = tmp_path / "releases" / "v1"
    (release / "review").mkdir(parents=True)
    (release / "manifest.json").write_text(json.dumps({"version": "v1"}))
    write_jsonl(release / "review" / "sample.jsonl", [rollout("2+2?", [answer("4")])])
    for given in (release, release.parent):
        for argv in commands(str(given), tmp_path):
            assert main([*argv, "-q"] if argv[0] != "compare" else argv) == 1, argv
            err = capsys.readouterr().err
            assert "rollforge release" in err and "not rollouts" in err and "rollforge report" in err, err
    assert not (tmp_path / "sft.jsonl").exists()


def test_the_real_nemo_gym_files_are_rollouts(
    shared_rollouts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(shared_rollouts), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rollouts"] == summary["lines"] > 0
