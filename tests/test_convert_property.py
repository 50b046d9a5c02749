"""Any line gives a Rollout or a Reject, never an exception: JSON values of any shape, rollout-shaped objects
with random items (valid and invalid mixed), and arbitrary bytes; through the full parse, the cheap head,
the lazy path and string arguments. Where both give an answer, the paths agree with each other."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollforge.decode import LineDecoder
from rollforge.reasons import REJECT_REASONS
from rollforge.rollout import Head, Reject, Rollout
from rollforge.schema import plain

EAGER, LAZY, STRINGS = LineDecoder(), LineDecoder(lazy_text=True), LineDecoder(arguments="string")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Whitespace other than space, tab and newlines is left out of generated text: after a think tag, the head's byte
# patterns cannot tell it from text (a known limit, see test_convert.py::test_head_turn_bounds_unicode_space).
ODD_SPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace() and c not in " \t\r\n")
chars = st.characters(exclude_characters=ODD_SPACE)

# NaN and infinities: json.dumps writes Python's NaN/Infinity literals, which the reader accepts (then rejects
# such a reward as bad_reward).
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(chars, max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(chars, max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
text = st.text(chars, max_size=30) | st.sampled_from(
    [
        "<think>x</think>y",
        "a</think>b",
        "<think>open",
        "",
        "</think>",
        "<think></think>",
        " \n",
        "\n</think>\n",
        "\ud800",
        "é 😀",
    ]
)
maybe_text = text | text | text | json_values  # text fields mostly hold text, sometimes anything


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with any subset of these keys."""
    return st.fixed_dictionaries({}, optional=fields)


parts = st.lists(
    optional(
        type=st.sampled_from(
            [
                "input_text",
                "output_text",
                "text",
                "summary_text",
                "reasoning_text",
                "refusal",
                "input_image",
                "input_file",
                None,
            ]
        ),
        text=maybe_text,
        refusal=maybe_text,
        image_url=st.sampled_from(["data:image/png;base64,AAAA", None]) | json_values,
        detail=st.sampled_from(["auto", "low"]),
    )
    | json_values,
    max_size=3,
)
content = maybe_text | parts
call_ids = st.sampled_from(["a", "b", "c"]) | json_values
messages = optional(
    type=st.just("message") | json_values,
    role=st.sampled_from(["user", "assistant", "system", "developer", "tool", None]),
    content=content,
)
items = st.one_of(
    messages,
    messages.map(lambda m: {**m, "type": "message"}),
    optional(
        type=st.just("function_call"),
        call_id=call_ids,
        name=st.text(max_size=5) | json_values,
        arguments=st.sampled_from(['{"x": 1}', "", " ", "[]", "{", "null", '"{}"', None]) | json_values,
    ).map(lambda c: {**c, "type": "function_call"}),
    optional(call_id=call_ids, output=content).map(lambda o: {**o, "type": "function_call_output"}),
    optional(summary=parts | json_values, content=parts | json_values, encrypted_content=maybe_text).map(
        lambda r: {**r, "type": "reasoning"}
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["web_search_call", "mcp_call", "item_reference"])}),
    json_values,
)
transcripts = st.lists(items, max_size=6)
tools = st.lists(
    st.one_of(
        optional(
            type=st.just("function"),
            name=st.text(max_size=5) | json_values,
            description=maybe_text,
            parameters=json_values,
            strict=st.booleans(),
        ),
        st.fixed_dictionaries({"type": st.just("function"), "function": json_values}),
        st.fixed_dictionaries({"type": st.sampled_from(["web_search", "file_search"])}),
        json_values,
    ),
    max_size=3,
)
rollouts = optional(
    responses_create_params=optional(
        input=text | transcripts | json_values, tools=tools | json_values, instructions=maybe_text
    )
    | json_values,
    response=optional(
        output=transcripts | st.lists(transcripts, max_size=3) | json_values,
        incomplete_details=st.none() | st.just({"reason": "max_output_tokens"}) | json_values,
        status=st.sampled_from(["completed", "incomplete"]) | json_values,
    )
    | json_values,
    reward=scalars | json_values,
    _ng_task_index=scalars,
    _ng_rollout_index=scalars,
    metadata=json_values,
)
# Mostly well-formed rollouts whose items are drawn from everything above.
near_valid = st.builds(
    lambda inputs, output, reward, extra: {
        "responses_create_params": {"input": inputs, "tools": extra},
        "response": {"output": output},
        "reward": reward,
    },
    st.just([{"role": "user", "content": "q"}]) | text | transcripts,
    transcripts | st.lists(transcripts, max_size=3),
    st.floats(-10, 10) | st.integers(-5, 5),
    st.just([]) | tools,
)


def check(data: bytes) -> None:
    eager, lazy, strings = EAGER.parse(data, "f", 1), LAZY.parse(data, "f", 1), STRINGS.parse(data, "f", 1)
    for record in (eager, lazy, strings):
        assert isinstance(record, Rollout | Reject), record
        if isinstance(record, Reject):
            assert record.reason in REJECT_REASONS, record
        else:
            check_conversation(record)
    assert type(eager) is type(lazy)
    if isinstance(eager, Reject):
        assert isinstance(lazy, Reject) and lazy.reason == eager.reason
        # string arguments only accept more: the same verdict unless it was the arguments
        assert eager.reason == "invalid_tool_arguments" or getattr(strings, "reason", None) == eager.reason
    else:
        assert isinstance(lazy, Rollout) and isinstance(strings, Rollout)
        assert plain(lazy.messages) == eager.messages == strings.messages
        assert (lazy.prompt_id, lazy.rollout_id, lazy.facts) == (
            eager.prompt_id,
            eager.rollout_id,
            eager.facts,
        )
    for decoder, full in ((EAGER, eager), (STRINGS, strings)):
        head = decoder.parse_head(data, "f", 1)
        assert isinstance(head, Head | Reject), head
        if isinstance(head, Reject):  # where the cheap look rejects, the full parse rejects for that reason
            assert isinstance(full, Reject) and full.reason == head.reason, (head, full)
        elif isinstance(full, Rollout):
            assert (head.reward, head.n_items, head.uses_tools, head.truncated, head.rollout_id) == (
                full.reward, full.n_items, full.uses_tools, full.truncated, full.rollout_id)  # fmt: skip
            assert head.turns <= full.assistant_turns <= head.turns_at_most


def check_conversation(r: Rollout) -> None:
    messages = plain(r.messages)
    assert 0 < r.prompt_len <= len(messages)
    for msg in messages:
        assert msg["role"] in ("system", "user", "assistant", "tool"), msg
        if msg["role"] == "assistant":
            assert isinstance(msg["content"], str), msg
            assert isinstance(msg.get("reasoning_content", ""), str), msg
            for call in msg.get("tool_calls", ()):
                assert isinstance(call["id"], str) and isinstance(call["function"]["name"], str)
                assert isinstance(call["function"]["arguments"], str)
        else:
            assert isinstance(msg["content"], str | list), msg


@SETTINGS
@given(json_values)
def test_any_json_value(value: Any) -> None:
    check(json.dumps(value).encode())


@SETTINGS
@given(rollouts)
def test_rollout_shaped_objects(value: dict[str, Any]) -> None:
    check(json.dumps(value).encode())


@SETTINGS
@given(near_valid)
def test_near_valid_rollouts(value: dict[str, Any]) -> None:
    check(json.dumps(value).encode())


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)


@SETTINGS
@given(near_valid, st.binary(max_size=8), st.integers(0, 10**6))
def test_corrupted_rollout_lines(value: dict[str, Any], noise: bytes, where: int) -> None:
    """A real-looking line with bytes (invalid UTF-8 included) spliced in or cut off."""
    data = json.dumps(value).encode()
    at = where % (len(data) + 1)
    check(data[:at] + noise + data[at:])
    check(data[:at])
