"""Stable identities. ``prompt_id`` groups the repeats of one task wherever and whenever they were collected:
it depends on the canonical prompt (messages + tools) only, never on files, line order, task indices or runs.
``rollout_id`` names one trajectory: the hash of its line, whatever file holds it and whatever whitespace
surrounds it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from gym_rollouts import answer, call, result, rollout, said, system, tool, user, write_jsonl

from rollforge.decode import LineDecoder
from rollforge.identity import canonical_prompt, prompt_id, rollout_id
from rollforge.io.read import read_rollouts
from rollforge.rollout import Head, Rollout

QUESTION = "What is the capital of France?"


def parse(row: dict[str, Any] | bytes, **decoder: Any) -> Rollout:
    data = row if isinstance(row, bytes) else json.dumps(row).encode()
    r = LineDecoder(**decoder).parse(data, "f.jsonl", 1)
    assert isinstance(r, Rollout), r
    return r


def pid(row: dict[str, Any]) -> str:
    return parse(row).prompt_id


def read(path: str) -> list[Rollout]:
    records = list(read_rollouts([path]))
    assert all(isinstance(r, Rollout) for r in records), records
    return records  # type: ignore[return-value]


# --- prompt_id ----------------------------------------------------------------------------------------------


def test_the_same_prompt_across_files_orders_task_indices_and_runs(tmp_path: Path) -> None:
    """Two runs of one task set: other files, other completion order, other (colliding) task indices, other
    answers, rewards and run metadata. Every repeat of a task gets one prompt_id, and tasks get distinct ones."""
    tasks = [[system("You are terse."), user(f"task {t}")] for t in range(3)]
    run_a = [rollout(tasks[t], [answer(f"a{t}.{r}")], reward=r / 2, _ng_task_index=t, _ng_rollout_index=r,
                     agent_ref={"name": "agent_a"}) for t in range(3) for r in range(2)]  # fmt: skip
    run_b = [rollout(tasks[t], [answer(f"b{t}.{r}")], reward=1 - r, _ng_task_index=(t + 1) % 3,  # collide
                     _ng_rollout_index=r, agent_ref={"name": "agent_b"}, run="second")
             for t in (2, 0, 1) for r in range(3)]  # fmt: skip
    (tmp_path / "later").mkdir()
    a = read(write_jsonl(tmp_path / "run_a.jsonl", run_a))
    b = read(write_jsonl(tmp_path / "later" / "run_b.jsonl", run_b))
    by_task: dict[str, set[str]] = {}
    for r in a + b:
        task = r.messages[1]["content"]
        by_task.setdefault(task, set()).add(r.prompt_id)
    assert all(len(ids) == 1 for ids in by_task.values()), by_task
    assert len({next(iter(ids)) for ids in by_task.values()}) == 3


def test_the_same_prompt_in_the_same_file_at_any_position(tmp_path: Path) -> None:
    rows = [rollout([user(QUESTION)], [answer(str(i))], reward=i) for i in range(4)]
    forward = read(write_jsonl(tmp_path / "f.jsonl", rows))
    backward = read(write_jsonl(tmp_path / "b.jsonl", ["", *rows[::-1], ""]))
    assert len({r.prompt_id for r in forward + backward}) == 1


@pytest.mark.parametrize(
    "prompt",
    [
        QUESTION,  # a string input
        [{"role": "user", "content": QUESTION}],  # a type-less message
        [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": QUESTION}]}],  # parts
        [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is the "},
                    {"type": "input_text", "text": "capital of France?"},
                ],
            }
        ],
    ],
    ids=["string", "typeless", "one_part", "two_parts"],
)
def test_spellings_of_one_prompt_share_an_id(prompt: Any) -> None:
    assert pid(rollout(prompt, [answer("Paris")])) == pid(rollout([user(QUESTION)], [answer("Paris")]))


def test_instructions_and_a_system_message_are_the_same_prompt() -> None:
    via_instructions = rollout([user(QUESTION)], [answer("Paris")], instructions="Be brief.")
    via_message = rollout([system("Be brief."), user(QUESTION)], [answer("Paris")])
    via_typeless = rollout([{"role": "system", "content": "Be brief."}, user(QUESTION)], [answer("Paris")])
    assert pid(via_instructions) == pid(via_message) == pid(via_typeless)


def test_a_prompt_written_inside_the_output_is_the_same_prompt() -> None:
    """Some agents send ``input: []`` and write the prompt into ``response.output``."""
    inside = rollout([], [user(QUESTION), answer("Paris")])
    assert parse(inside).prompt_len == 1
    assert pid(inside) == pid(rollout([user(QUESTION)], [answer("Paris")]))


def test_what_the_model_and_environment_did_is_not_the_prompt() -> None:
    plain = rollout([user(QUESTION)], [answer("Paris")])
    busy = rollout(
        [user(QUESTION)],
        [
            call("c1", "lookup", q="France"),
            result("c1", "Paris"),
            answer("Paris"),
            user("sure?"),
            answer("yes"),
        ],
        reward=0.0,
        truncated=True,
    )
    assert pid(plain) == pid(busy)


def test_flat_and_nested_tools_are_the_same_prompt() -> None:
    flat = tool("lookup", "q")
    nested = {"type": "function", "function": {k: flat[k] for k in ("name", "description", "parameters")}}
    reordered = {"type": "function", "function": dict(reversed(list(nested["function"].items())))}
    ids = {pid(rollout([user(QUESTION)], [answer("Paris")], tools=[t])) for t in (flat, nested, reordered)}
    assert len(ids) == 1


@pytest.mark.parametrize(
    "other",
    [
        rollout([user(QUESTION + " ")], [answer("Paris")]),  # one more space
        rollout([user(QUESTION.lower())], [answer("Paris")]),
        rollout([system("Be brief."), user(QUESTION)], [answer("Paris")]),
        rollout([user(QUESTION), said("Paris."), user("And Spain?")], [answer("Madrid")]),
        rollout([user(QUESTION)], [answer("Paris")], tools=[tool("lookup", "q")]),
        rollout([user(QUESTION)], [answer("Paris")], tools=[{**tool("lookup", "q"), "description": "other"}]),
        rollout([user(QUESTION)], [answer("Paris")], tools=[tool("lookup", "q"), tool("search", "q")]),
        rollout([{"role": "developer", "content": QUESTION}], [answer("Paris")]),  # same text, other role
    ],
    ids=["space", "case", "system", "history", "tool", "tool_description", "two_tools", "role"],
)
def test_different_prompts_or_tools_have_different_ids(other: dict[str, Any]) -> None:
    base = rollout([user(QUESTION)], [answer("Paris")], tools=[])
    assert pid(other) != pid(base)


def test_typed_and_typeless_prompts_in_files(tmp_path: Path) -> None:
    typed = rollout([system("S"), user(QUESTION)], [answer("x")], _ng_task_index=0)
    typeless = rollout([{"role": "system", "content": "S"}, {"role": "user", "content": QUESTION}], [answer("y")],
                       _ng_task_index=3)  # fmt: skip
    one = read(write_jsonl(tmp_path / "one.jsonl", [typed]))
    two = read(write_jsonl(tmp_path / "two.jsonl", [typeless]))
    assert one[0].prompt_id == two[0].prompt_id


def test_the_canonical_prompt_is_sorted_compact_plain_json() -> None:
    messages = [{"role": "user", "content": "é \n"}]
    tools = [{"type": "function", "function": {"parameters": {"b": 1, "a": 2}, "name": "f"}}]
    canon = canonical_prompt(messages, tools)
    assert canon == (
        b'{"messages":[{"content":"\xc3\xa9 \\n","role":"user"}],'
        b'"tools":[{"function":{"name":"f","parameters":{"a":2,"b":1}},"type":"function"}]}'
    )
    assert prompt_id(messages, tools) == prompt_id([dict(reversed(list(messages[0].items())))], tools)


def test_the_lazy_path_gives_the_same_ids(examples_dir: Path) -> None:
    for raw in (examples_dir / "tool_calling.jsonl").read_bytes().splitlines():
        eager, lazy = parse(raw), parse(raw, lazy_text=True)
        assert (eager.prompt_id, eager.rollout_id) == (lazy.prompt_id, lazy.rollout_id)


def test_ids_are_stable_across_versions() -> None:
    """Manifests, review databases and splits store these ids: the hash and the canonical form are frozen."""
    assert prompt_id([{"role": "user", "content": "hi"}], []) == "ceb493bc0a56e7f1"
    assert rollout_id(b'{"a": 1}') == "95a9a6f1312b067c"


# --- rollout_id ---------------------------------------------------------------------------------------------


def test_rollout_id_is_the_same_in_any_file_or_position(tmp_path: Path) -> None:
    rows = [rollout([user(QUESTION)], [answer(str(i))], reward=i) for i in range(5)]
    a = read(write_jsonl(tmp_path / "a.jsonl", rows))
    b = read(write_jsonl(tmp_path / "b.jsonl", ["", "", *rows[::-1]]))
    assert [r.rollout_id for r in a] == [r.rollout_id for r in b[::-1]]
    assert len({r.rollout_id for r in a}) == 5  # one prompt, five different trajectories
    assert all(re.fullmatch("[0-9a-f]{16}", r.rollout_id) for r in a)


@pytest.mark.parametrize(
    "change",
    [
        lambda row: {**row, "reward": 0.5},
        lambda row: {**row, "_ng_rollout_index": 1},
        lambda row: {**row, "extra": None},
        lambda row: {**row, "response": {**row["response"], "output": [answer("Paris!")]}},
    ],
    ids=["reward", "rollout_index", "extra_field", "answer"],
)
def test_different_lines_have_different_rollout_ids(change: Any) -> None:
    row = rollout([user(QUESTION)], [answer("Paris")], _ng_rollout_index=0)
    assert parse(change(row)).rollout_id != parse(row).rollout_id


@pytest.mark.parametrize("wrap", [b"%s\n", b"%s\r\n", b"%s  \t \n", b"  %s", b"\t%s\r\n"])
def test_rollout_id_ignores_surrounding_whitespace(wrap: bytes) -> None:
    line = json.dumps(rollout([user(QUESTION)], [answer("Paris")])).encode()
    assert parse(wrap % line).rollout_id == parse(line).rollout_id == rollout_id(line)


def test_rollout_id_reads_the_bytes_as_written() -> None:
    """Not a canonical form: the same object spelled differently is another line, and that is fine (exact
    duplicates are what the id detects)."""
    row = rollout([user(QUESTION)], [answer("Paris")])
    assert (
        parse(json.dumps(row).encode()).rollout_id
        != parse(json.dumps(row, indent=None, separators=(",", ":")).encode()).rollout_id
    )


def test_the_head_names_the_same_rollout(examples_dir: Path) -> None:
    decoder = LineDecoder()
    for n, raw in enumerate((examples_dir / "math_reasoning.jsonl").read_bytes().splitlines(), 1):
        head, full = decoder.parse_head(raw + b"\n", "f", n), decoder.parse(raw, "f", n)
        assert isinstance(head, Head) and isinstance(full, Rollout)
        assert head.rollout_id == full.rollout_id
