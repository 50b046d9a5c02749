"""One test per conversion rule (the table in rollforge/convert.py) and per reject reason."""

from __future__ import annotations

import gzip
import json
from typing import Any

import msgspec
import pytest

from rollforge.decode import LineDecoder
from rollforge.io.read import read_rollouts
from rollforge.io.sources import companion_kind
from rollforge.reasons import REJECT_REASONS
from rollforge.rollout import Reject, Rollout
from rollforge.schema import plain


def line(inputs: Any, output: Any, reward: Any = 1.0, **params: Any) -> bytes:
    row: dict[str, Any] = {
        "responses_create_params": {"input": inputs, **params},
        "response": {"output": output},
    }
    if reward is not ...:
        row["reward"] = reward
    return json.dumps(row).encode()


def parse(data: bytes, **decoder: Any) -> Rollout | Reject:
    return LineDecoder(**decoder).parse(data, "f.jsonl", 1)


def ok(data: bytes, **decoder: Any) -> Rollout:
    result = parse(data, **decoder)
    assert isinstance(result, Rollout), result
    return result


def say(role: str, text: Any, typed: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {"role": role, "content": text}
    if typed:
        item["type"] = "message"
    return item


def answer(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


def reasoning(*texts: str, encrypted: str | None = None) -> dict[str, Any]:
    return {"type": "reasoning", "summary": [{"type": "summary_text", "text": t} for t in texts],
            "encrypted_content": encrypted}  # fmt: skip


def call(cid: str, name: str, args: Any = "{}") -> dict[str, Any]:
    return {"type": "function_call", "call_id": cid, "name": name, "arguments": args}


def result(cid: str, out: Any) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": cid, "output": out}


USER = [say("user", "hi")]


def test_string_input_is_one_user_message() -> None:
    r = ok(line("what is 2+2?", [answer("4")]))
    assert r.messages == [{"role": "user", "content": "what is 2+2?"}, {"role": "assistant", "content": "4"}]
    assert r.prompt_len == 1


def test_typeless_messages_are_messages() -> None:
    r = ok(line([say("user", "hi", typed=False)], [answer("hello")]))
    assert r.messages[0] == {"role": "user", "content": "hi"}


def test_instructions_and_leading_system_developer_fold_into_one_system() -> None:
    r = ok(
        line([say("system", "S"), say("developer", "D"), say("user", "U")], [answer("A")], instructions="I")
    )
    assert r.messages[0] == {"role": "system", "content": "I\n\nS\n\nD"}
    assert r.messages[1]["role"] == "user" and r.facts["developer_messages"] == 1


def test_a_late_system_message_stays_in_place() -> None:
    r = ok(line([say("user", "U"), say("system", "later")], [answer("A")]))
    assert [m["role"] for m in r.messages] == ["user", "system", "assistant"] and r.facts["late_system"] == 1


def test_reasoning_summary_goes_to_reasoning_content() -> None:
    r = ok(line(USER, [reasoning("think 1", "think 2"), answer("A")]))
    assert r.messages[-1] == {"role": "assistant", "content": "A", "reasoning_content": "think 1\n\nthink 2"}
    assert r.facts["reasoning_summary"] == 1


@pytest.mark.parametrize(("encrypted", "fact"), [(None, "reasoning_hidden"), ("gAAA", "reasoning_encrypted")])
def test_hidden_reasoning_adds_nothing(encrypted: str | None, fact: str) -> None:
    r = ok(line(USER, [reasoning(encrypted=encrypted), answer("A")]))
    assert r.messages[-1] == {"role": "assistant", "content": "A"} and r.facts[fact] == 1


@pytest.mark.parametrize(
    ("text", "reasoning_text", "content", "fact"),
    [
        ("<think>plan</think>\n\nanswer", "plan", "answer", "think_inline"),
        ("plan\n</think>\n\nanswer", "plan", "answer", "think_lone_close"),
        ("<think>a</think>x<think>b</think>y", "a\n\nb", "xy", "think_inline"),
        ("<think>cut off mid", "cut off mid", None, "think_unclosed"),
    ],
)
def test_inline_think_tags(text: str, reasoning_text: str, content: str | None, fact: str) -> None:
    r = ok(line(USER, [answer(text)]))
    msg = r.messages[-1]
    assert (
        msg["reasoning_content"] == reasoning_text
        and msg["content"] == (content or "")
        and r.facts[fact] == 1
    )


def test_a_bare_close_tag_is_no_turn() -> None:
    r = ok(line(USER, [answer("</think>")]))
    assert r.assistant_turns == 0


def test_reasoning_text_content_parts() -> None:
    item = {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "raw cot"}]}
    r = ok(line(USER, [item, answer("A")]))
    assert r.messages[-1]["reasoning_content"] == "raw cot"


def test_one_model_turn_is_one_assistant_message() -> None:
    r = ok(line(USER, [reasoning("r"), answer("part 1 "), answer("part 2"), call("c1", "f", '{"x": 1}'),
                       result("c1", "out"), answer("done")]))  # fmt: skip
    roles = [m["role"] for m in r.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    first = r.messages[1]
    assert first["content"] == "part 1 part 2" and first["reasoning_content"] == "r"
    assert first["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    ]


def test_parallel_calls_answered_by_tool_messages_with_ids_and_names() -> None:
    r = ok(line(USER, [call("a", "f"), call("b", "g"), result("a", "1"), result("b", "2"), answer("ok")]))
    assert len(r.messages[1]["tool_calls"]) == 2 and r.facts["parallel_calls"] == 1
    assert r.messages[2] == {"role": "tool", "tool_call_id": "a", "name": "f", "content": "1"}
    assert r.messages[3] == {"role": "tool", "tool_call_id": "b", "name": "g", "content": "2"}


def test_an_unanswered_final_call_is_kept() -> None:
    r = ok(line(USER, [answer("submitting"), call("s", "submit", '{"a": 1}')]))
    assert (
        r.messages[-1]["tool_calls"][0]["function"]["name"] == "submit" and r.facts["unanswered_calls"] == 1
    )


def test_environment_user_turns_inside_the_output() -> None:
    r = ok(line(USER, [answer("a1"), say("user", "env says"), answer("a2")]))
    assert [m["role"] for m in r.messages] == ["user", "assistant", "user", "assistant"]
    assert r.prompt_len == 1 and r.facts["env_user_turns"] == 1 and r.assistant_turns == 2


def test_prompt_inside_the_output_with_empty_input() -> None:
    r = ok(line([], [say("user", "the task"), answer("A")]))
    assert r.prompt_len == 1 and r.messages[0] == {"role": "user", "content": "the task"}
    assert r.facts["prompt_in_output"] == 1


def test_nested_transition_outputs_take_the_last_transcript() -> None:
    step1 = [say("user", "q"), call("c", "f"), result("c", "1")]
    step2 = [*step1, answer("final")]
    r = ok(line([], [step1, step2]))
    assert [m["role"] for m in r.messages] == ["user", "assistant", "tool", "assistant"] and r.n_items == 4


def test_nested_outputs_that_do_not_extend_are_rejected() -> None:
    assert (
        parse(line([], [[say("user", "q"), answer("a")], [say("user", "other")]])).reason
        == "nested_output_not_cumulative"
    )


def test_image_parts_become_chat_parts() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
    r = ok(line([say("user", [{"type": "input_text", "text": "look"}, image])], [answer("a cat")]))
    assert r.messages[0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "auto"}},
    ]
    assert r.facts["images"] == 1


def test_refusal_parts_are_text() -> None:
    item = {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "I can't"}]}
    r = ok(line(USER, [item]))
    assert r.messages[-1]["content"] == "I can't" and r.facts["refusals"] == 1


@pytest.mark.parametrize(
    "response", [{"incomplete_details": {"reason": "max_output_tokens"}}, {"status": "incomplete"}]
)
def test_truncated_responses(response: dict[str, Any]) -> None:
    row = json.loads(line(USER, [reasoning("long")]))
    row["response"] |= response
    assert ok(json.dumps(row).encode()).truncated


def test_tools_flat_to_nested_and_nested_pass_through() -> None:
    flat = {
        "type": "function",
        "name": "f",
        "description": "d",
        "parameters": {"type": "object"},
        "strict": True,
    }
    nested = {"type": "function", "function": {"name": "g", "parameters": {}}}
    r = ok(line(USER, [answer("a")], tools=[flat, nested]))
    assert r.tools == [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}},
                       nested]  # fmt: skip


@pytest.mark.parametrize(("args", "stored"), [({"x": 1}, '{"x":1}'), ("", "{}"), (None, "{}"), ("  ", "{}")])
def test_arguments_kept_as_a_json_string(args: Any, stored: str) -> None:
    r = ok(line(USER, [call("c", "f", args), result("c", "o"), answer("a")]))
    assert r.messages[1]["tool_calls"][0]["function"]["arguments"] == stored


def test_non_object_arguments_rejected_as_objects_kept_as_strings() -> None:
    data = line(USER, [call("c", "f", "not json"), result("c", "o"), answer("a")])
    assert parse(data).reason == "invalid_tool_arguments"
    assert ok(data, arguments="string").messages[1]["tool_calls"][0]["function"]["arguments"] == "not json"


def test_tool_output_parts_are_text() -> None:
    r = ok(
        line(
            USER,
            [
                call("c", "f"),
                result("c", [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]),
                answer("x"),
            ],
        )
    )
    assert r.messages[2]["content"] == "ab"


@pytest.fixture(params=["examples", "shared"])
def corpus(request: pytest.FixtureRequest) -> list[tuple[str, int, bytes]]:
    """Every non-blank line of the bundled example corpus, or of the real rollouts (skips without ../shared)."""
    folder = request.getfixturevalue("examples_dir" if request.param == "examples" else "shared_rollouts")
    lines = []
    for path in sorted(folder.glob("*.jsonl*")):
        if companion_kind(str(path)) is None:
            lines += [
                (path.name, n, raw) for n, raw in enumerate(path.read_bytes().splitlines(), 1) if raw.strip()
            ]
    assert len(lines) >= 100
    return lines


def raws_in(value: Any) -> int:
    if isinstance(value, msgspec.Raw):
        return 1
    if isinstance(value, dict):
        return sum(raws_in(v) for v in value.values())
    if isinstance(value, list):
        return sum(raws_in(v) for v in value)
    return 0


def test_lazy_text_is_the_same_conversation(corpus: list[tuple[str, int, bytes]]) -> None:
    eager_decoder, lazy_decoder = LineDecoder(), LineDecoder(lazy_text=True)
    lazy_somewhere = False
    for name, n, raw in corpus:
        eager, lazy = eager_decoder.parse(raw, name, n), lazy_decoder.parse(raw, name, n)
        if isinstance(eager, Reject):
            assert isinstance(lazy, Reject) and lazy.reason == eager.reason, (name, n)
            continue
        assert isinstance(lazy, Rollout), (name, n, lazy)
        assert raws_in(eager.messages) == 0, (name, n)  # the plain path: plain strings only
        lazy_somewhere = lazy_somewhere or raws_in(lazy.messages) > 0
        assert plain(lazy.messages) == eager.messages, (name, n)
        fields = ("prompt_id", "rollout_id", "reward", "prompt_len", "tools", "facts", "truncated", "n_items",
                  "assistant_turns", "uses_tools", "fields")  # fmt: skip
        assert [getattr(lazy, f) for f in fields] == [getattr(eager, f) for f in fields], (name, n)
    assert lazy_somewhere  # the lazy path really kept raw text


def test_head_agrees_with_the_full_parse(corpus: list[tuple[str, int, bytes]]) -> None:
    decoder = LineDecoder()
    heads = 0
    for name, n, raw in corpus:
        full, head = decoder.parse(raw, name, n), decoder.parse_head(raw, name, n)
        if isinstance(head, Reject):  # where the cheap look rejects, it names the full parse's reason
            assert isinstance(full, Reject) and (head.reason, head.line) == (full.reason, n), (name, n)
            continue
        if isinstance(full, Reject):  # the head may let a bad line through: the full parse catches it
            continue
        heads += 1
        assert (head.reward, head.n_items, head.uses_tools, head.truncated, head.rollout_id) == (
            full.reward, full.n_items, full.uses_tools, full.truncated, full.rollout_id), (name, n)  # fmt: skip
        assert head.turns <= full.assistant_turns <= head.turns_at_most, (name, n)
    assert heads >= 100


# --- every reject reason ----------------------------------------------------------------------------------------


REJECTS: list[tuple[bytes, str]] = [
    (b"<PLACEHOLDER ROW>", "invalid_json"),
    (b'{"a": ', "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'"text"', "not_an_object"),
    (b'{"responses_create_params": {"input": "x"}}', "no_response"),
    (b'{"responses_create_params": {"input": "x"}, "response": {}, "reward": 1}', "no_output"),
    (
        b'{"responses_create_params": {"input": "x"}, "response": {"output": "nope"}, "reward": 1}',
        "no_output",
    ),
    (b'{"response": {"output": []}, "reward": 1}', "no_prompt"),
    (b'{"responses_create_params": {"input": 5}, "response": {"output": []}, "reward": 1}', "no_prompt"),
    (line([], []), "no_prompt"),
    (line(USER, [answer("a")], reward=...), "no_reward"),
    (line(USER, [answer("a")], reward=None), "no_reward"),
    (line(USER, [answer("a")], reward="high"), "bad_reward"),
    (line(USER, [answer("a")], reward=10**400), "bad_reward"),
    (line(USER, [answer("a")]).replace(b'"reward": 1.0', b'"reward": NaN'), "bad_reward"),
    (line(USER, ["a string item"]), "malformed_item"),
    (line(USER, [{"type": "function_call", "arguments": "{}"}]), "malformed_item"),
    (line(USER, [{"type": "web_search_call", "id": "w"}]), "unsupported_item"),
    (line([say("user", [{"type": "input_file", "file_id": "f"}])], [answer("a")]), "unsupported_content"),
    (line([say("narrator", "x")], [answer("a")]), "unknown_role"),
    (line(USER, [result("nobody", "o")]), "orphan_tool_output"),
    (line(USER, [answer("a")], tools=[{"type": "web_search"}]), "unsupported_tool"),
    (line(USER, [call("c", "f", "[1]"), result("c", "o")]), "invalid_tool_arguments"),
    (line([], [[say("user", "q"), answer("a")], [answer("b")]]), "nested_output_not_cumulative"),
    # more ways to break each rule
    (b"", "invalid_json"),
    (b"\xff\xfe{}", "invalid_json"),
    (
        line([say("user", "caf\u00e9")], [answer("a")]).replace(b"\\u00e9", b"\xe9"),
        "invalid_json",
    ),  # Latin-1
    (line([say("user", "\ud800")], [answer("a")]), "invalid_json"),  # a lone surrogate escape
    (b"null", "not_an_object"),
    (b"5", "not_an_object"),
    (b'{"responses_create_params": {"input": "x"}, "response": null, "reward": 1}', "no_response"),
    (b'{"responses_create_params": {"input": "x"}, "response": "done", "reward": 1}', "no_response"),
    (
        b'{"responses_create_params": {"input": "x"}, "response": {"output": null}, "reward": 1}',
        "no_output",
    ),
    (b'{"responses_create_params": "x", "response": {"output": []}, "reward": 1}', "no_prompt"),
    (b'{"foo": 1}', "no_prompt"),  # a custom record: no params, no response
    (line([], [answer("a")]), "no_prompt"),  # nothing precedes the model's first turn
    (line(USER, [answer("a")], reward=[1]), "bad_reward"),
    (line(USER, [answer("a")]).replace(b'"reward": 1.0', b'"reward": 1e400'), "bad_reward"),
    (line(USER, [answer("a")]).replace(b'"reward": 1.0', b'"reward": -Infinity'), "bad_reward"),
    (line(USER, [{"type": "message", "role": "assistant", "content": {"text": "a"}}]), "malformed_item"),
    (
        line(
            USER,
            [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": 5}]}],
        ),
        "malformed_item",
    ),
    (line(USER, [{"type": "message", "role": "assistant", "content": ["a"]}]), "malformed_item"),
    (line(USER, [{"type": "reasoning", "summary": [], "content": [1]}]), "malformed_item"),
    (line(USER, [{"type": "reasoning", "summary": [{"text": {"a": 1}}]}]), "malformed_item"),
    (line(USER, [{"type": "function_call", "call_id": "c", "arguments": "{}"}]), "malformed_item"),
    (line([], [[say("user", "q")], say("user", "q")]), "malformed_item"),  # items and lists mixed
    (line(USER, [{"role": None, "content": "x"}]), "unsupported_item"),  # neither type nor role
    (
        line(
            USER,
            [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "input_image", "image_url": "data:image/png;base64,AA"}],
                }
            ],
        ),
        "unsupported_content",
    ),
    (
        line([say("user", [{"type": "input_image"}])], [answer("a")]),
        "unsupported_content",
    ),  # no image_url
    (line(USER, [say("tool", "x")]), "unknown_role"),
    (line(USER, [call("c", "f"), result("d", "o")]), "orphan_tool_output"),
    (line(USER, [answer("a")], tools={"type": "function", "name": "f"}), "unsupported_tool"),
    (
        line(USER, [answer("a")], tools=[{"type": "function", "description": "no name"}]),
        "unsupported_tool",
    ),
    (
        line(USER, [call("c", "f", json.dumps("{}")), result("c", "o")]),
        "invalid_tool_arguments",
    ),  # twice encoded
    (
        line(USER, [call("c", "f", [1, 2]), result("c", "o")]),
        "invalid_tool_arguments",
    ),  # stored as a list
    (line(USER, [call("c", "f", '{"x": 1'), result("c", "o")]), "invalid_tool_arguments"),  # cut off
    (
        line(USER, [call("c", "f", {"x": "@"}), result("c", "o")]).replace(b'"@"', b"1e400"),
        "number_out_of_range",
    ),
    (
        line(USER, [answer("a")], tools=[{"type": "function", "name": "f", "x": 1 << 64}]),
        "number_out_of_range",
    ),
    (line(USER, [answer("a")], junk="@").replace(b'"@"', b"[" * 600 + b"]" * 600), "too_deep"),
]


def test_every_reject_reason_has_a_test() -> None:
    """A new reason code comes with a line that produces it (unreadable_file: the corrupt-stream tests;
    line_too_long: the reader's, in test_line_limits)."""
    assert {reason for _, reason in REJECTS} | {"unreadable_file", "line_too_long"} == set(REJECT_REASONS)


@pytest.mark.parametrize(("data", "reason"), REJECTS)
def test_reject_reasons(data: bytes, reason: str) -> None:
    result_ = parse(data)
    assert isinstance(result_, Reject) and result_.reason == reason, result_
    head = LineDecoder().parse_head(data, "f.jsonl", 1)
    if isinstance(head, Reject):  # the cheap look, where it rejects, says the same
        assert head.reason == reason


def test_the_first_look_rejects_in_the_conversions_words() -> None:
    """head_of takes its item kinds, roles and reject messages from rollforge.convert: where it rejects a
    line by itself (before any full parse settles the reason), reason and message are the conversion's."""
    from rollforge.head import head_of

    decoder = LineDecoder()
    seen = set()
    for data, _ in REJECTS:
        try:
            obj = decoder._decoder.decode(data)
        except Exception:  # the schema refuses it: the first look never sees it
            continue
        try:
            head = head_of(obj, (), data, "f.jsonl", 1)
        except (msgspec.ValidationError, RecursionError):  # a number past float range: the full parse says
            continue
        if isinstance(head, Reject):
            full = parse(data)
            assert isinstance(full, Reject) and (head.reason, head.message) == (full.reason, full.message)
            seen.add(head.reason)
    assert {"unsupported_item", "unknown_role", "orphan_tool_output", "invalid_tool_arguments"} <= seen
    assert {"no_response", "no_output", "no_prompt"} & seen


def test_a_corrupt_gzip_stream_is_an_unreadable_file(tmp_path: Any) -> None:
    good = b"\n".join(line(USER, [answer(f"a{i}")]) for i in range(200)) + b"\n"
    packed = gzip.compress(good)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    records = list(read_rollouts([str(path)]))
    assert isinstance(records[-1], Reject) and records[-1].reason == "unreadable_file"
    assert all(isinstance(r, Rollout) for r in records[:-1]) and records[:-1]


def test_convert_prompt_of_a_task_row() -> None:
    from rollforge.convert import convert_prompt

    messages, tools = convert_prompt(
        {"input": [{"role": "user", "content": "2+2?"}], "instructions": "Be brief."}
    )
    assert messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    assert tools == []
    messages, tools = convert_prompt({"input": "hi", "tools": [{"type": "function", "name": "f"}]})
    assert messages == [{"role": "user", "content": "hi"}]
    assert tools == [{"type": "function", "function": {"name": "f"}}]


# --- every rule, exactly: all messages, prompt_len and facts ----------------------------------------------------

U, A = {"role": "user", "content": "hi"}, {"role": "assistant", "content": "A"}
ITEM_FACTS = {"item:message:user": 1, "item:message:assistant": 1}


def tool_msg(cid: str, name: str, content: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": cid, "name": name, "content": content}


def tc(cid: str, name: str, args: str = "{}") -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


RULES: dict[str, tuple[bytes, list[dict[str, Any]], int, dict[str, int]]] = {
    "string_input": (line("hi", [answer("A")]), [U, A], 1, {"item:message:assistant": 1}),
    "typeless_messages": (
        line([say("system", "S", typed=False), say("user", "hi", typed=False)], [answer("A")]),
        [{"role": "system", "content": "S"}, U, A], 2, {"item:message:system": 1, **ITEM_FACTS}),
    "instructions_developer_system_fold": (
        line([say("developer", "D"), say("system", "S"), say("user", "hi")], [answer("A")], instructions="I"),
        [{"role": "system", "content": "I\n\nD\n\nS"}, U, A], 2,
        {"item:message:developer": 1, "developer_messages": 1, "item:message:system": 1, **ITEM_FACTS}),
    "instructions_alone": (line("hi", [answer("A")], instructions="I"),
                           [{"role": "system", "content": "I"}, U, A], 2, {"item:message:assistant": 1}),
    "late_system_in_input": (
        line([say("user", "hi"), say("system", "later")], [answer("A")]),
        [U, {"role": "system", "content": "later"}, A], 2,
        {"item:message:system": 1, "late_system": 1, **ITEM_FACTS}),
    "late_system_in_output": (
        line(USER, [answer("A"), say("system", "note"), answer("B")]),
        [U, A, {"role": "system", "content": "note"}, {"role": "assistant", "content": "B"}], 1,
        {"item:message:user": 1, "item:message:assistant": 2, "item:message:system": 1, "late_system": 1}),
    "reasoning_summaries_joined": (
        line(USER, [reasoning("r1", "r2"), reasoning("r3"), answer("A")]),
        [U, {**A, "reasoning_content": "r1\n\nr2\n\nr3"}], 1,
        {"item:reasoning": 2, "reasoning_summary": 2, **ITEM_FACTS}),
    "reasoning_hidden": (line(USER, [reasoning(), answer("A")]), [U, A], 1,
                         {"item:reasoning": 1, "reasoning_hidden": 1, **ITEM_FACTS}),
    "reasoning_encrypted": (line(USER, [reasoning(encrypted="gAAAA"), answer("A")]), [U, A], 1,
                            {"item:reasoning": 1, "reasoning_encrypted": 1, **ITEM_FACTS}),
    "reasoning_only_hidden_is_no_turn": (line(USER, [reasoning()]), [U], 1,
                                         {"item:message:user": 1, "item:reasoning": 1, "reasoning_hidden": 1}),
    "think_inline": (line(USER, [answer("<think>\nplan\n</think>\n\nA")]), [U, {**A, "reasoning_content": "plan"}],
                     1, {"think_inline": 1, **ITEM_FACTS}),
    "think_lone_close": (line(USER, [answer("plan\n</think>\n\nA")]), [U, {**A, "reasoning_content": "plan"}], 1,
                         {"think_lone_close": 1, **ITEM_FACTS}),
    "think_unclosed": (line(USER, [answer("<think>\nplan, then cut")]),
                       [U, {"role": "assistant", "content": "", "reasoning_content": "plan, then cut"}], 1,
                       {"think_unclosed": 1, **ITEM_FACTS}),
    "reasoning_text_parts": (
        line(USER, [{"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "raw"},
                                                                      {"type": "reasoning_text", "text": "cot"}]},
                    answer("A")]),
        [U, {**A, "reasoning_content": "raw\n\ncot"}], 1, {"item:reasoning": 1, "reasoning_summary": 1, **ITEM_FACTS}),
    "one_model_turn_merged": (
        line(USER, [reasoning("r1"), answer("A1 "), reasoning("r2"), answer("A2"), call("c", "f", '{"x": 1}')]),
        [U, {"role": "assistant", "content": "A1 A2", "reasoning_content": "r1\n\nr2",
             "tool_calls": [tc("c", "f", '{"x": 1}')]}], 1,
        {"item:message:user": 1, "item:reasoning": 2, "reasoning_summary": 2, "item:message:assistant": 2,
         "item:function_call": 1, "unanswered_calls": 1}),
    "parallel_calls": (
        line(USER, [call("a", "f", '{"q": 1}'), call("b", "g"), result("a", "1"), result("b", "2"), answer("A")]),
        [U, {"role": "assistant", "content": "", "tool_calls": [tc("a", "f", '{"q": 1}'), tc("b", "g")]},
         tool_msg("a", "f", "1"), tool_msg("b", "g", "2"), A], 1,
        {"item:function_call": 2, "parallel_calls": 1, "item:function_call_output": 2, **ITEM_FACTS}),
    "unanswered_final_call": (
        line(USER, [call("a", "f"), result("a", "1"), answer("A"), call("s", "submit", '{"x": 2}')]),
        [U, {"role": "assistant", "content": "", "tool_calls": [tc("a", "f")]}, tool_msg("a", "f", "1"),
         {**A, "tool_calls": [tc("s", "submit", '{"x": 2}')]}], 1,
        {"item:function_call": 2, "item:function_call_output": 1, "unanswered_calls": 1, **ITEM_FACTS}),
    "env_user_turns": (
        line(USER, [answer("A"), say("user", "env"), answer("B")]),
        [U, A, {"role": "user", "content": "env"}, {"role": "assistant", "content": "B"}], 1,
        {"item:message:user": 2, "item:message:assistant": 2, "env_user_turns": 1}),
    "prompt_in_output": (
        line([], [say("system", "S"), say("user", "hi"), answer("A"), say("user", "env"), answer("B")]),
        [{"role": "system", "content": "S"}, U, A, {"role": "user", "content": "env"},
         {"role": "assistant", "content": "B"}], 2,
        {"item:message:system": 1, "item:message:user": 2, "prompt_in_output": 1, "env_user_turns": 1,
         "item:message:assistant": 2}),
    "nested_output_last_transcript": (
        line([], [[say("user", "hi"), call("c", "f")], [say("user", "hi"), call("c", "f"), result("c", "1")],
                  [say("user", "hi"), call("c", "f"), result("c", "1"), answer("A")]]),
        [U, {"role": "assistant", "content": "", "tool_calls": [tc("c", "f")]}, tool_msg("c", "f", "1"), A], 1,
        {"item:message:user": 1, "prompt_in_output": 1, "item:function_call": 1, "item:function_call_output": 1,
         "item:message:assistant": 1}),
    "image_parts": (
        line([say("user", [{"type": "input_text", "text": "look"},
                           {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"}])],
             [answer("A")]),
        [{"role": "user", "content": [{"type": "text", "text": "look"},
                                      {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA",
                                                                          "detail": "low"}}]}, A], 1,
        {"images": 1, **ITEM_FACTS}),
    "refusal_parts": (
        line(USER, [{"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "Sorry. "}, {"type": "refusal", "refusal": "I can't."}]}]),
        [U, {"role": "assistant", "content": "Sorry. I can't."}], 1, {"refusals": 1, **ITEM_FACTS}),
    "text_parts_joined": (
        line([say("user", [{"type": "input_text", "text": "h"}, {"type": "input_text", "text": "i"}])],
             [answer("A")]), [U, A], 1, ITEM_FACTS),
    "tool_output_parts": (
        line(USER, [call("c", "f"), result("c", [{"type": "input_text", "text": "o1"},
                                                 {"type": "input_text", "text": "o2"}]), answer("A")]),
        [U, {"role": "assistant", "content": "", "tool_calls": [tc("c", "f")]}, tool_msg("c", "f", "o1o2"), A],
        1, {"item:function_call": 1, "item:function_call_output": 1, **ITEM_FACTS}),
    "arguments_stored_as_an_object": (
        line(USER, [call("c", "f", {"b": [1, 2], "a": "x"}), result("c", "o")]),
        [U, {"role": "assistant", "content": "", "tool_calls": [tc("c", "f", '{"b":[1,2],"a":"x"}')]},
         tool_msg("c", "f", "o")], 1,
        {"item:message:user": 1, "item:function_call": 1, "item:function_call_output": 1}),
    "empty_arguments": (
        line(USER, [call("c", "f", ""), call("d", "g", None)]),
        [U, {"role": "assistant", "content": "", "tool_calls": [tc("c", "f"), tc("d", "g")]}], 1,
        {"item:message:user": 1, "item:function_call": 2, "parallel_calls": 1, "unanswered_calls": 2}),
}  # fmt: skip


@pytest.mark.parametrize("rule", RULES)
def test_rule_exactly(rule: str) -> None:
    data, messages, prompt_len, facts = RULES[rule]
    r = ok(data)
    assert (r.messages, r.prompt_len, r.facts) == (messages, prompt_len, facts)
    assert r.assistant_turns == sum(m["role"] == "assistant" for m in messages[prompt_len:])
    assert r.uses_tools == any("tool_calls" in m for m in messages[prompt_len:])
    lazy = LineDecoder(lazy_text=True).parse(data, "f.jsonl", 1)
    assert isinstance(lazy, Rollout) and plain(lazy.messages) == messages


@pytest.mark.parametrize(
    ("response", "truncated"),
    [({"incomplete_details": {"reason": "max_output_tokens"}, "status": "incomplete"}, True),
     ({"incomplete_details": {"reason": "content_filter"}}, True), ({"status": "incomplete"}, True),
     ({"incomplete_details": None, "status": "completed"}, False), ({"incomplete_details": {}}, False)],
)  # fmt: skip
def test_truncation_is_a_fact(response: dict[str, Any], truncated: bool) -> None:
    row = json.loads(line(USER, [reasoning("long thought")]))
    row["response"] |= response
    r = ok(json.dumps(row).encode())
    assert r.truncated is truncated and r.facts.get("truncated", 0) == truncated
    head = LineDecoder().parse_head(json.dumps(row).encode(), "f.jsonl", 1)
    assert not isinstance(head, Reject) and head.truncated is truncated


def test_tools_flat_and_nested_exactly() -> None:
    flat = {
        "type": "function",
        "name": "f",
        "description": "d",
        "strict": True,
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    }
    untyped = {"name": "g", "parameters": {"type": "object"}, "description": None}
    nested = {
        "type": "function",
        "function": {"name": "h", "description": "x", "parameters": {}, "strict": False},
    }
    r = ok(line(USER, [answer("A")], tools=[flat, untyped, nested]))
    assert r.tools == [
        {"type": "function", "function": {"name": "f", "description": "d", "parameters": flat["parameters"]}},
        {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}},
        nested,  # already nested: passed through as it is
    ]  # fmt: skip
    assert (
        ok(line(USER, [answer("A")], tools=None)).tools == ok(line(USER, [answer("A")], tools=[])).tools == []
    )


def test_invalid_arguments_kept_as_written_with_string_arguments() -> None:
    for args in ("not json", "[1, 2]", '"{}"', '{"x": 1'):
        data = line(USER, [call("c", "f", args), result("c", "o"), answer("A")])
        assert parse(data).reason == "invalid_tool_arguments"
        r = ok(data, arguments="string")
        assert r.messages[1]["tool_calls"] == [tc("c", "f", args)] and r.facts["invalid_arguments"] == 1


@pytest.mark.parametrize("text", ["</think>\u00a0", "</think>\f", "<think></think>\u3000"])
def test_head_turn_bounds_unicode_space(text: str) -> None:
    """After a think tag, whitespace other than space, tab and newlines (a form feed, a no-break space) counts
    as text in the head's byte patterns, so a turn the conversion drops (the answer is stripped) is counted as
    certain. Only --min/--max-turns on the head-first path can be off, and only for such lines. Strict: once
    the head is fixed this fails, and the xfail goes."""
    data = line(USER, [answer(text)])
    head, full = LineDecoder().parse_head(data, "f.jsonl", 1), ok(data)
    assert full.assistant_turns == 0 and not isinstance(head, Reject)
    assert head.turns <= full.assistant_turns
