"""Clean evaluation: `--exclude-tasks EVAL.jsonl` drops training rollouts whose prompt is an evaluation task,
exactly (prompt_id) or by a shared 13-word run of the user text, as `contaminated`: counted, listed in the
manifest, the report and contaminated.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gym_rollouts import answer, check_sft_accounting, read_jsonl, rollout, system, user, write_jsonl

from rollforge.build.recipe import load_recipe, make_recipe
from rollforge.build.release import build
from rollforge.cli.main import main
from rollforge.convert import convert_prompt
from rollforge.decontam import build_eval_tasks, words
from rollforge.errors import RollforgeError
from rollforge.identity import prompt_id

TEMPLATE = "Solve the following math problem. Make sure to put the answer (and only answer) inside \\boxed{}."
PROBLEMS = [
    "A train leaves the station at nine in the morning travelling at sixty miles per hour towards a city "
    "two hundred and forty miles away. At what time does it arrive?",
    "Let v and w be two randomly chosen roots of the equation z to the power 1997 minus one equals zero. "
    "Find the probability that the modulus of their sum is at least one.",
    "How many positive integers less than one thousand are divisible by neither five nor seven, and how "
    "many of those are prime numbers greater than thirty?",
]
TRAIN_PROBLEM = (
    "A rectangle has a perimeter of fifty centimetres and its length is four centimetres more than its width. "
    "What is the area of the rectangle in square centimetres?"
)


def task(text: str, **fields: Any) -> dict[str, Any]:
    """A NeMo Gym task row: what `rollforge collect` sends."""
    return {"responses_create_params": {"input": [user(text)]}, **fields}


def as_prompt(text: str) -> tuple[str, list[dict[str, Any]]]:
    """(prompt_id, messages) of a one-message prompt, as a training rollout's."""
    messages = [{"role": "user", "content": text}]
    return prompt_id(messages, []), messages


def reverse(digits: str) -> str:
    return f"Reverse: {digits}"


def test_words_fold_case_and_drop_punctuation() -> None:
    assert words("Reverse:  4821!\nNow, PLEASE.") == ["reverse", "4821", "now", "please"]


def test_exact_prompt_id_of_a_task_row_equals_its_rollouts(tmp_path: Path) -> None:
    row = task("What is 2+2?")
    eval_file = write_jsonl(tmp_path / "eval.jsonl", [row])
    tasks = build_eval_tasks(eval_file)
    # The rollout's prompt as rollforge reads it (a system prompt changes the prompt id, not the user text).
    messages, tools = convert_prompt(row["responses_create_params"])
    assert tasks.match(prompt_id(messages, tools), messages) == "prompt_id"
    with_system = [{"role": "system", "content": "Be brief."}, *messages]
    assert tasks.match(prompt_id(with_system, tools), with_system) == "ngram"  # same user text, 4 words
    assert tasks.match(*as_prompt("What is 2+3?")) is None


def test_long_ngram_overlap_survives_light_edits(tmp_path: Path) -> None:
    rows = [task(f"{TEMPLATE}\n\n{p}") for p in PROBLEMS]
    tasks = build_eval_tasks(write_jsonl(tmp_path / "eval.jsonl", rows * 4))  # as rollouts repeat tasks
    assert tasks.tasks == 3  # distinct prompts: a task's repeats do not make its own n-grams "shared"
    assert tasks.templates > 0  # the shared instruction's n-grams are in every task: ignored

    def verdict(text: str) -> str | None:
        return tasks.match(*as_prompt(text))

    edited = PROBLEMS[0].upper().replace(",", ";").replace("sixty", "seventy").replace(" at ", "  at\n")
    assert verdict(f"Please answer this. {edited} Show your work.") == "ngram"
    # Only the shared instructions in common: a different problem is not contaminated.
    assert verdict(f"{TEMPLATE}\n\n{TRAIN_PROBLEM}") is None
    # A 12-word run is below the default 13; at --contamination-ngram 8 it counts.
    twelve = " ".join(PROBLEMS[1].split()[:12])
    assert verdict(f"Unrelated words first. {twelve}") is None
    assert build_eval_tasks(tasks.path, n=8).match(*as_prompt(twelve)) == "ngram"


def test_short_evaluation_texts_match_whole_texts_only(tmp_path: Path) -> None:
    tasks = build_eval_tasks(write_jsonl(tmp_path / "eval.jsonl", [task(reverse("4821"))]))

    def verdict(text: str) -> str | None:
        return tasks.match(*as_prompt(text))

    assert verdict("reverse 4821!") == "ngram"
    assert verdict("Reverse: 4821, then reverse 1234") is None
    assert verdict(reverse("1284")) is None


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], "eval.jsonl:1: not valid JSON"),
        (['{"input": "hi"}'], "eval.jsonl:1: an evaluation task needs a responses_create_params object"),
        (["", "  "], "no evaluation tasks in"),
    ],
)
def test_bad_evaluation_files_say_where(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(RollforgeError, match=message):
        build_eval_tasks(str(path))
    with pytest.raises(RollforgeError, match="cannot read evaluation tasks"):
        build_eval_tasks(str(tmp_path / "missing.jsonl"))


@pytest.fixture
def leaky(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Training rollouts of 12 tasks, 4 of them held-out evaluation tasks (2 rollouts each), plus a lightly
    edited copy of a long evaluation prompt under another system prompt; and the held-out tasks file."""
    train = [reverse(f"{n:04d}") for n in range(1000, 1008)]
    heldout = [reverse(f"{n:04d}") for n in range(9000, 9004)]
    long_eval = f"{TEMPLATE}\n\n{PROBLEMS[2]}"
    rows = [rollout([user(t)], [answer(t[::-1])], 1.0) for t in train + heldout for _ in range(2)]
    edited = long_eval.replace("thirty", "forty").lower()
    rows.append(rollout([system("You are a careful solver."), user(edited)], [answer("42")], 1.0))
    rows.append(rollout([user(heldout[0])], [answer("wrong")], 0.0))  # a failure: not_success comes first
    inputs = tmp_path / "rollouts.jsonl"
    write_jsonl(inputs, rows)
    eval_rows = [task(t, expected_answer=t[::-1]) for t in heldout] + [task(long_eval)]
    eval_file = tmp_path / "heldout.jsonl"
    write_jsonl(eval_file, eval_rows)
    return inputs, eval_file, heldout


def test_a_contaminated_release_is_caught(leaky: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    inputs, eval_file, heldout = leaky
    recipe = make_recipe(
        {
            "inputs": [str(inputs)],
            "output": str(tmp_path / "releases"),
            "exclude_tasks": str(eval_file),
            "val_fraction": 0.0,
            "workers": 1,
            "dedup": "off",
        }
    )  # fmt: skip  (dedup off: this corpus writes each rollout twice, byte for byte; the count is about contamination)
    release = build(recipe)
    acc = release.manifest["accounting"]
    assert acc["sft"]["filtered"] == {"contaminated": 9, "not_success": 1}
    assert acc["sft"]["written"] == 16 and acc["lines"] == 26
    kept_out = acc["contamination"]
    assert kept_out["rollouts"] == 9 and kept_out["prompts"] == 5
    assert kept_out["rollouts_by_match"] == {"ngram": 1, "prompt_id": 8}
    assert kept_out["eval_tasks"]["tasks"] == 5 and kept_out["eval_tasks"]["ngram"] == 13
    exact = {p["prompt_id"] for p in kept_out["contaminated_prompts"] if p["match"] == "prompt_id"}
    assert exact == {prompt_id(*convert_prompt({"input": [user(t)]})) for t in heldout}
    # Nothing of an evaluation task reached the released data.
    released = read_jsonl(release.path / "sft" / "train.jsonl")
    assert not {r["prompt_id"] for r in released} & {p["prompt_id"] for p in kept_out["contaminated_prompts"]}
    assert not any(r["messages"][0]["content"] in heldout for r in released)
    dropped = read_jsonl(release.path / "contaminated.jsonl")
    assert len(dropped) == 9 and {r["prompt_id"] for r in dropped} == {
        p["prompt_id"] for p in kept_out["contaminated_prompts"]
    }
    assert "contaminated.jsonl" in {o["path"] for o in release.manifest["outputs"]}
    page = (release.path / "report.html").read_text()
    assert "Evaluation tasks kept out (--exclude-tasks)" in page
    assert all(p["prompt_id"] in page for p in kept_out["contaminated_prompts"])


def test_recipe_key_is_relative_to_the_recipe(leaky: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    inputs, eval_file, _ = leaky
    recipe = tmp_path / "rollforge.yaml"
    recipe.write_text(f"inputs: [{inputs.name}]\noutput: releases\nexclude_tasks: {eval_file.name}\n")
    loaded = load_recipe(recipe)
    assert loaded.model_dump()["exclude_tasks"] == str(tmp_path / eval_file.name)
    assert loaded.model_dump()["contamination_ngram"] == 13


@pytest.mark.parametrize("command", ["sft", "dpo"])
def test_sft_and_dpo_take_the_flag(
    leaky: tuple[Path, Path, list[str]], tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, eval_file, _ = leaky
    out = tmp_path / f"{command}.jsonl"
    args = [
        command,
        str(inputs),
        "-o",
        str(out),
        "--exclude-tasks",
        str(eval_file),
        "--json",
        "--allow-empty",
    ]
    args += ["--dedup", "off"] if command == "sft" else []  # each rollout is written twice, byte for byte
    assert main([*args, "--contamination-ngram", "13", "--no-success-only"]) == 0
    acc = json.loads(capsys.readouterr().out)
    assert acc["contamination"]["rollouts"] == 10  # with --no-success-only the failure is caught too
    if command == "sft":
        assert acc["filtered"] == {"contaminated": 10}
        check_sft_accounting(acc)
    else:
        assert acc["filtered"]["contaminated"] == 10 and acc["pairs"] == 0  # the one pair was an eval task
