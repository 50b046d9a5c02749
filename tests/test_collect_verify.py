"""Unit tests of collect's parts: built-in verifiers, chat -> Responses items, backoff, the output file."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rollforge.collect.client import RetryPolicy
from rollforge.collect.output import LineAppender, scan
from rollforge.collect.responses import BadCompletion, assistant_text, chat_to_response, output_items
from rollforge.collect.verify import Verdict, extract_choice, final_answer, normalize, verify


@pytest.mark.parametrize(
    ("text", "expected", "correct", "extracted"),
    [
        ("The answer is 0.5", "1/2", True, "0.5"),
        ("so \\boxed{\\frac{1}{2}}", "0.5", True, "\\frac{1}{2}"),
        ("1/2", "0.5", True, "1/2"),
        ("\\boxed{50\\%}", "0.5", True, "50\\%"),  # math-verify reads 50% as 0.5
        ("x = \\boxed{3}", "$3$", True, "3"),
        ("\\boxed{\\sqrt{4}}", "2", True, "\\sqrt{4}"),
        ("\\boxed{1/3}", "0.5", False, "\\frac{1}{3}"),  # the string form math-verify gives
        ("I do not know", "0.5", False, None),
    ],
)
def test_math_verifier(text: str, expected: str, correct: bool, extracted: str | None) -> None:
    assert verify("math", text, expected) == Verdict(correct, extracted)


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("Final: \\boxed{C}", "C"),
        ("\\boxed{\\text{(H)}}", "H"),
        ("Answer: B", "B"),
        ("The correct answer is (D).", "D"),
        ("the answer is **E**", "E"),
        ("A is wrong and B is wrong, so (G) it is", "G"),  # "(G)" beats the earlier letters
        ("I think it is J", "J"),  # "I think": a pronoun, not a choice
        ("A cat would pick F.", "F"),  # "A cat": an article, not a choice
        ("Options (A) and (B) are close. Answer: A", "A"),  # "Answer:" wins over the earlier "(B)"
        ("none of these", None),
        ("K is not an option", None),
    ],
)
def test_choice_extraction(text: str, letter: str | None) -> None:
    assert extract_choice(text) == letter


def test_choice_verifier() -> None:
    assert verify("choice", "Answer: C", "C") == Verdict(True, "C")
    assert verify("choice", "Answer: C", "(c)") == Verdict(True, "C")
    assert verify("choice", "Answer: C", "D") == Verdict(False, "C")
    assert verify("choice", "no idea", "D") == Verdict(False, None)
    assert verify("choice", "Answer: C", "C) Paris").reward == 1.0


def test_exact_verifier() -> None:
    assert final_answer("work\nwork\nAnswer: Paris.") == "Paris."
    assert final_answer("x \\boxed{\\text{Paris}} y") == "\\text{Paris}"
    assert final_answer("first line\n  last line  \n\n") == "last line"
    assert final_answer("") is None
    assert normalize("  $\\text{New   York}$. ") == "new york"
    assert verify("exact", "Answer: new york", "New York") == Verdict(True, "new york")
    assert verify("exact", "\\boxed{**42**}", "42") == Verdict(True, "**42**")
    assert verify("exact", "Answer: 42", "43") == Verdict(False, "42")
    assert verify("exact", "Answer: 42", "43").fields() == {
        "reward": 0.0,
        "is_correct": False,
        "extracted_answer": "42",
    }
    assert verify("none", "anything", None) is None


def test_chat_message_to_response_items() -> None:
    items = output_items({"content": "<think>plan</think>Done.", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]})  # fmt: skip
    assert [i["type"] for i in items] == ["reasoning", "message", "function_call"]
    assert items[0]["summary"] == [{"type": "summary_text", "text": "plan"}]
    assert items[1]["content"][0] == {
        "type": "output_text",
        "text": "Done.",
        "annotations": [],
        "logprobs": [],
    }
    assert {k: items[2][k] for k in ("call_id", "name", "arguments")} == {
        "call_id": "c1",
        "name": "f",
        "arguments": '{"x":1}',
    }
    lone = output_items({"content": "reasoning here</think>\n\n42", "reasoning_content": None})
    assert lone[0]["summary"][0]["text"] == "reasoning here" and lone[1]["content"][0]["text"] == "42"
    field = output_items({"content": "42", "reasoning": "vllm's newer field"})
    assert field[0]["summary"][0]["text"] == "vllm's newer field"
    # An empty answer is still a model turn.
    assert [i["type"] for i in output_items({"content": None})] == ["message"]


def test_chat_completion_to_response() -> None:
    completion = {
        "created": 5,
        "model": "served",
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        "choices": [{"message": {"content": "hi"}, "finish_reason": "length"}],
    }
    response = chat_to_response(completion, "asked")
    assert (response["model"], response["created_at"], response["status"]) == ("served", 5.0, "incomplete")
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["usage"] == {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    assert assistant_text(response) == "hi"
    for bad in ({}, {"choices": []}, {"choices": [{"text": "legacy"}]}):
        with pytest.raises(BadCompletion):
            chat_to_response(bad, "m")


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    rng = random.Random(0)
    for retry, (low, high) in enumerate(
        [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (5.0, 10.0), (5.0, 10.0)]
    ):
        delays = [policy.delay(retry, None, rng) for _ in range(200)]
        assert low <= min(delays) and max(delays) <= high and len(set(delays)) == 200
    assert policy.delay(0, 7.0, rng) == 7.0
    assert policy.delay(0, 99.0, rng) == 10.0  # Retry-After is capped by max_delay


def test_scan_keeps_complete_lines_and_cuts_a_partial_one(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with LineAppender(str(path), truncate=True) as out:
        out.write({"_ng_task_index": 0, "_ng_rollout_index": 0, "reward": 1})
        out.write({"_ng_task_index": 0, "_ng_rollout_index": 1, "reward": 0.5})
    with path.open("ab") as fh:
        fh.write(b'not json\n{"_ng_task_index": 1}\n{"_ng_task_index": 2, "_ng_rollout')
    found = scan(str(path))
    assert found.keys == {(0, 0), (0, 1)}
    assert found.rewards == {(0, 0): 1.0, (0, 1): 0.5}
    assert (found.dropped_partial, found.unreadable) == (len(b'{"_ng_task_index": 2, "_ng_rollout'), 2)
    assert path.read_bytes().endswith(b'{"_ng_task_index": 1}\n')
    assert scan(str(tmp_path / "missing.jsonl")).keys == set()
