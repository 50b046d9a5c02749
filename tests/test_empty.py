"""Nothing written is an error: exit 1 with the top reasons and the fix (``--allow-empty`` opts out); the
prompts DPO could not pair come back as task rows that ``rollforge collect`` runs again; ``compare`` with no
prompt in common exits 1; a build with no row fails and leaves no version, one with no pair says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gym_rollouts import answer, rollout, write_jsonl
from test_collect_fakes import FakeServer, Reply, completion

import rollforge
from rollforge.cli.main import main
from rollforge.errors import RollforgeError
from rollforge.io.read import read_rollouts
from rollforge.rollout import Rollout


def rollouts_file(tmp_path: Path, name: str = "runs.jsonl", prompt: str = "2+2?") -> str:
    return write_jsonl(
        tmp_path / name,
        [
            rollout(prompt, [answer("4")], 1.0),
            rollout(prompt, [answer("5")], 0.0),
            rollout("3+3?", [answer("6")]),
        ],
    )


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", ["sft", "dpo"])
def test_a_command_that_writes_nothing_exits_1_naming_why_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path, out = rollouts_file(tmp_path), tmp_path / "out.jsonl"
    code, _, err = run([command, path, "-o", str(out), "--min-reward", "2", "-q"], capsys)
    assert code == 1
    assert f"rollforge: error: {command} wrote nothing to {out}: " in err and err.count("\n") == 1
    assert "below_min_reward" in err and "loosen --min-reward" in err and "--allow-empty" in err
    assert not out.exists()  # a failed run leaves no empty file to be taken for a result
    code, _, err = run([command, path, "-o", str(out), "--min-reward", "2", "-q", "--allow-empty"], capsys)
    assert code == 0 and out.read_text() == ""


@pytest.mark.parametrize("command", ["sft", "dpo", "kto", "sample"])
def test_an_empty_run_leaves_an_earlier_output_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Refusing an empty result must not destroy what the same -o held before (an earlier dataset)."""
    out = tmp_path / "out.jsonl"
    out.write_text('{"an": "earlier dataset"}\n')
    empty = write_jsonl(tmp_path / "bad.jsonl", ["{not json"])  # nothing any command can write a row from
    code, _, err = run([command, empty, "-o", str(out), "-q"], capsys)
    assert code == 1 and f"{command} wrote nothing" in err
    assert out.read_text() == '{"an": "earlier dataset"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "out.jsonl"]  # no partial file either


def test_sample_of_rejected_lines_only_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", ["{not json", '{"reward": 1}'])
    code, _, err = run(["sample", path, "-o", str(tmp_path / "s.jsonl"), "-q"], capsys)
    assert code == 1 and "sample wrote nothing" in err and "rejected invalid_json" in err
    assert "rollforge inspect" in err


def test_other_kinds_on_standard_input_get_the_fix_from_the_empty_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Standard input cannot be looked at before it is read: its rejects name what the lines look like."""
    import io
    import sys

    task = json.dumps({"responses_create_params": {"input": "2+2?"}, "expected_answer": "4"})
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((task + "\n").encode())))
    code, _, err = run(["sft", "-", "-o", str(tmp_path / "o.jsonl"), "-q"], capsys)
    assert code == 1 and "1 rejected no_response" in err and "rollforge collect" in err


def test_the_api_raises_unless_allow_empty(tmp_path: Path) -> None:
    path = rollouts_file(tmp_path)
    with pytest.raises(RollforgeError, match="not_success"):
        rollforge.sft(path, tmp_path / "o.jsonl", success_threshold=5, success_only=True)
    acc = rollforge.sft(path, tmp_path / "o.jsonl", success_threshold=5, success_only=True, allow_empty=True)
    assert acc["written"] == 0 and acc["filtered"] == {"not_success": 3}


def test_dpo_on_the_real_files_exits_1_with_the_hint(
    shared_rollouts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["dpo", str(shared_rollouts), "-o", str(tmp_path / "d.jsonl"), "-q"], capsys)
    assert code == 1
    assert "unpaired single_rollout" in err and "--num-repeats" in err and "--recollect FILE" in err


def test_recollect_writes_task_rows_that_collect_runs_again(
    shared_rollouts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = tmp_path / "again.jsonl"
    code, _, err = run(
        ["dpo", str(shared_rollouts), "-o", str(tmp_path / "d.jsonl"), "--recollect", str(tasks), "--json"],
        capsys,
    )
    assert code == 1 and f"are in {tasks} as task rows" in err
    rows = [json.loads(line) for line in tasks.read_text().splitlines()]
    originals = [r for r in read_rollouts([str(shared_rollouts)]) if isinstance(r, Rollout)]
    unpaired = {r.prompt_id for r in originals}  # no prompt of the real files has a pair
    assert len(rows) == len(unpaired)
    for row in rows:
        assert isinstance(row["responses_create_params"], dict)
        assert not {"response", "reward", "_ng_task_index", "_ng_rollout_index"} & row.keys()
    assert any("expected_answer" in row for row in rows)  # task fields ride along
    environment = sum(not row["responses_create_params"]["input"] for row in rows)  # games: sokoban, tetris
    assert environment > 0 and f"{environment} start from their environment" in " ".join(err.split())

    with FakeServer(lambda path, body: Reply(body=completion("The answer is 4."))) as server:
        code, out, _ = run(
            ["collect", str(tasks), "-o", str(tmp_path / "more.jsonl"), "--base-url", f"{server.url}/v1",
             "--model", "m", "--verifier", "none", "--num-repeats", "2", "--limit", "3", "--json"],
            capsys,
        )  # fmt: skip
    assert code == 0, out
    collected = [r for r in read_rollouts([str(tmp_path / "more.jsonl")]) if isinstance(r, Rollout)]
    assert len(collected) == 6
    assert {r.prompt_id for r in collected} <= unpaired  # the same prompts, now with two rollouts each


def test_compare_with_no_prompt_in_common_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = rollouts_file(tmp_path, "before.jsonl", "2+2?")
    after = write_jsonl(tmp_path / "after.jsonl", [rollout("7*7?", [answer("49")])])
    code, out, err = run(["compare", before, after, "--json"], capsys)
    assert code == 1 and "ran different task sets" in err  # refused before anything is computed
    code, out, err = run(["compare", before, after, "--json", "--allow-different-tasks"], capsys)
    assert code == 1 and json.loads(out)["n_paired"] == 0  # told to go on: shown, then refused
    assert "no prompt is in both runs" in err
    assert run(["compare", before, before, "--json"], capsys)[0] == 0


def test_a_build_with_no_rows_fails_and_leaves_no_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, releases = rollouts_file(tmp_path), tmp_path / "releases"
    (releases / "v1").mkdir(parents=True)
    code, _, err = run(["build", path, "-o", str(releases), "--min-reward", "2", "-q"], capsys)
    assert code == 1 and "build wrote nothing" in err and "below_min_reward" in err
    assert sorted(p.name for p in releases.iterdir()) == ["v1"]  # no v2, no hidden leftovers
    assert (
        run(["build", path, "-o", str(releases), "--min-reward", "2", "-q", "--allow-empty"], capsys)[0] == 0
    )
    assert (releases / "v2" / "manifest.json").is_file()


def test_a_build_without_pairs_writes_no_dpo_config_and_says_so(
    shared_rollouts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = tmp_path / "again.jsonl"
    code, _, err = run(
        ["build", str(shared_rollouts), "-o", str(tmp_path / "rel"), "--recollect", str(tasks)], capsys
    )
    assert code == 0
    assert "no DPO pairs, so no DPO trainer config" in " ".join(err.split())  # with the summary, on stderr
    configs = sorted(p.name for p in (tmp_path / "rel" / "v1" / "trainer-configs").iterdir())
    assert configs and not [name for name in configs if "dpo" in name]
    assert "config_name: dpo" not in (tmp_path / "rel" / "v1" / "README.md").read_text()  # nor in the card
    manifest = json.loads((tmp_path / "rel" / "v1" / "manifest.json").read_text())
    assert manifest["accounting"]["dpo"]["recollect"]["tasks"] == len(tasks.read_text().splitlines()) > 0
