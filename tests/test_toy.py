"""The toy task (rollforge.toy), the digit-level tiny model, `collect --local` and the iterate recipe: fast checks.

The slow proof that a model learns from the loop is tests/test_iterate_loop.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from rollforge.cli.main import main
from rollforge.collect.tasks import load_tasks
from rollforge.collect.verify import verify
from rollforge.errors import RollforgeError
from rollforge.io.read import read_rollouts
from rollforge.loop import load_iterate_recipe
from rollforge.rollout import Rollout
from rollforge.toy import VERIFIER, ToySets, write_toy


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_toy_sets_are_disjoint_and_the_demonstrator_is_biased(tmp_path: Path) -> None:
    summary = write_toy(tmp_path, ToySets(demos=1000, train_tasks=50, heldout_tasks=220, seed=3))
    demos = rows_of(tmp_path / "demos.jsonl")
    train, heldout = (
        load_tasks(str(tmp_path / "train_tasks.jsonl")),
        load_tasks(str(tmp_path / "heldout_tasks.jsonl")),
    )
    assert (len(demos), len(train), len(heldout)) == (1000, 50, 220)
    prompts = [{row["messages"][0]["content"] for row in demos}]
    prompts += [
        {t["responses_create_params"]["input"][0]["content"] for t in rows} for rows in (train, heldout)
    ]
    assert sum(map(len, prompts)) == len(set.union(*prompts)) == 1270  # no prompt in two sets
    wrong = 0
    for row in demos:
        number = row["messages"][0]["content"].removeprefix("Reverse: ")
        answer = row["messages"][1]["content"]
        assert answer[:-1] == number[::-1][:-1]  # only ever the last digit is wrong
        wrong += answer != number[::-1]
    assert wrong == summary["wrong_demos"] and 0.55 < wrong / 1000 < 0.65
    task = heldout[0]
    number = task["responses_create_params"]["input"][0]["content"].removeprefix("Reverse: ")
    assert task["expected_answer"] == number[::-1] and task["metadata"] == {"task_type": "reverse"}
    # collect's exact verifier scores the toy: the exact reversal is 1.0, anything else 0.0
    assert verify(VERIFIER, number[::-1], task["expected_answer"]).reward == 1.0  # type: ignore[union-attr]
    assert verify(VERIFIER, number, task["expected_answer"]).reward == 0.0  # type: ignore[union-attr]
    assert write_toy(tmp_path / "again", ToySets(demos=1000, train_tasks=50, heldout_tasks=220, seed=3))
    assert (tmp_path / "again" / "demos.jsonl").read_bytes() == (tmp_path / "demos.jsonl").read_bytes()


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`rollforge example --task reverse`: files, untrained digit-level model, iterate recipe."""
    pytest.importorskip("transformers")
    out = tmp_path_factory.mktemp("toy")
    assert main(["example", "--task", "reverse", "-o", str(out), "--heldout-count", "12", "--json"]) == 0
    return out


def test_example_task_reverse_writes_everything_the_loop_needs(toy: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    assert len(load_tasks(str(toy / "heldout_tasks.jsonl"))) == 12
    assert len(load_tasks(str(toy / "train_tasks.jsonl"))) == ToySets.train_tasks
    tokenizer = AutoTokenizer.from_pretrained(toy / "untrained")
    ids = tokenizer("Reverse: 4821", add_special_tokens=False)["input_ids"]
    assert [tokenizer.decode([i]) for i in ids][-4:] == ["4", "8", "2", "1"]  # one token per digit
    config = AutoConfig.from_pretrained(toy / "untrained")
    assert (config.hidden_size, config.num_hidden_layers) == (128, 2)
    recipe = load_iterate_recipe(toy / "loop.yaml")
    assert recipe.base_model == str(toy / "base") and recipe.heldout_tasks == str(toy / "heldout_tasks.jsonl")


def test_collect_local_writes_nemo_gym_rollouts_and_resumes(toy: Path, tmp_path: Path) -> None:
    out = tmp_path / "local.jsonl"
    args = ["collect", str(toy / "heldout_tasks.jsonl"), "-o", str(out), "--local", str(toy / "untrained"),
            "--verifier", "exact", "--num-repeats", "2", "--temperature", "1.0", "--max-tokens", "6",
            "--batch-size", "5", "--json", "--quiet"]  # fmt: skip
    assert main(args) == 0
    rows = rows_of(out)
    assert sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in rows) == [
        (t, k) for t in range(12) for k in range(2)
    ]
    for row in rows:
        assert row["response"]["model"] == str(toy / "untrained")
        assert row["responses_create_params"]["temperature"] == 1.0
        assert row["reward"] in (0.0, 1.0) and "is_correct" in row and "extracted_answer" in row
        assert row["response"]["usage"]["output_tokens"] <= 6
    records = list(read_rollouts([str(out)]))
    assert len(records) == 24 and all(isinstance(r, Rollout) for r in records)
    # killed mid-line: the partial line is cut and its row generated again; finished rows are kept
    kept = out.read_bytes().splitlines(keepends=True)[:7]
    out.write_bytes(b"".join(kept) + kept[7 - 1][:30])
    assert main([*args, "--resume"]) == 0
    again = rows_of(out)
    assert again[:7] == [orjson.loads(line) for line in kept]
    assert len({(r["_ng_task_index"], r["_ng_rollout_index"]) for r in again}) == len(again) == 24


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--local", "M", "--base-url", "http://x/v1", "--model", "M"],
            "exactly one of --agent-url, --base-url",
        ),
        (["--local", "M"], "--local needs --verifier"),
        (["--local", "M", "--verify-url", "http://x"], "--local scores with a built-in --verifier"),
    ],
)
def test_collect_local_option_errors(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = tmp_path / "t.jsonl"
    tasks.write_text(json.dumps({"responses_create_params": {"input": "hi"}}) + "\n")
    assert main(["collect", str(tasks), "-o", str(tmp_path / "o.jsonl"), *flags]) == 1
    assert message in capsys.readouterr().err


def test_iterate_recipe_errors_name_the_key(tmp_path: Path) -> None:
    recipe = tmp_path / "loop.yaml"
    recipe.write_text("base_model: b\ntrain_tasks: t\nheldout_tasks: h\noutput: o\nsamples: 0\n")
    with pytest.raises(RollforgeError, match="samples: Input should be greater than or equal to 1"):
        load_iterate_recipe(recipe)
    recipe.write_text("base_model: b\ntrain_tasks: t\nheldout_tasks: h\noutput: o\nbuild: {output: x}\n")
    with pytest.raises(RollforgeError, match=r"build\.output is set by iterate itself"):
        load_iterate_recipe(recipe)
    recipe.write_text("base_model: b\ntrain_tasks: t\nheldout_tasks: h\noutput: o\ncolect: {}\n")
    with pytest.raises(RollforgeError, match="colect: Extra inputs are not permitted"):
        load_iterate_recipe(recipe)


def test_iterate_api_stops_with_one_line_when_a_round_has_nothing_to_train_on(
    toy: Path, tmp_path: Path
) -> None:
    """The untrained model never succeeds: round 0 and round 1's collect finish, the build has no SFT row."""
    import rollforge

    for name in ("train_tasks", "heldout_tasks"):
        lines = (toy / f"{name}.jsonl").read_bytes().splitlines(keepends=True)
        (tmp_path / f"{name}.jsonl").write_bytes(b"".join(lines[:6]))
    keys = {"base_model": str(toy / "untrained"), "train_tasks": str(tmp_path / "train_tasks.jsonl"),
            "heldout_tasks": str(tmp_path / "heldout_tasks.jsonl"), "output": str(tmp_path / "run"), "rounds": 1,
            "samples": 2, "collect": {"mode": "local", "max_tokens": 4}}  # fmt: skip
    with pytest.raises(RollforgeError, match="has no SFT rows to train on"):
        rollforge.iterate(**keys)
    run = tmp_path / "run"
    assert sorted(str(p.relative_to(run)) for p in run.glob("rounds/*/*.done.json")) == [
        "rounds/0/eval.done.json",
        "rounds/1/collect.done.json",
    ]
    assert len(rows_of(run / "rounds" / "1" / "train_rollouts.jsonl")) == 12
    with pytest.raises(RollforgeError, match=r"another recipe \(differs in: samples\)"):
        rollforge.iterate(**{**keys, "samples": 3})


def test_the_control_shuffles_rewards_and_keeps_their_count(tmp_path: Path) -> None:
    from rollforge.loop.steps import shuffle_rewards

    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"_ng_task_index": i, "reward": float(i % 3 == 0), "is_correct": i % 3 == 0} for i in range(30)]
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    shuffle_rewards(src, dst, seed=1)
    out = rows_of(dst)
    assert [r["_ng_task_index"] for r in out] == list(range(30))
    assert sorted(r["reward"] for r in out) == sorted(r["reward"] for r in rows)
    assert all(r["is_correct"] == (r["reward"] == 1.0) for r in out)  # a verdict moves with its reward
    assert [r["reward"] for r in out] != [r["reward"] for r in rows]


def test_the_table_says_when_p_is_at_the_permutation_floor() -> None:
    from rollforge.loop.table import _p

    assert _p({"p_value": 9.999e-05, "p_value_method": "monte_carlo"}) == "< 1e-4"
    assert _p({"p_value": 0.0241, "p_value_method": "monte_carlo"}) == "0.0241"
    assert _p({"p_value": 3e-5, "p_value_method": "exact"}) == "3e-05"
