"""Any line gives a Rollout or a Reject, never an exception: JSON values of any shape, rollout-shaped
objects with random items, and arbitrary bytes; through the full parse, the cheap head and the lazy path."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollforge.decode import LineDecoder
from rollforge.rollout import Head, Reject, Rollout

DECODERS = [LineDecoder(), LineDecoder(lazy_text=True), LineDecoder(arguments="string")]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
text = st.text(max_size=30) | st.sampled_from(
    ["<think>x</think>y", "a</think>b", "<think>open", "", "</think>"]
)
parts = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["input_text", "output_text", "refusal", "input_image", "x"]), "text": text}
    ),
    max_size=3,
)
items = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("message"),
            "role": st.sampled_from(["user", "assistant", "system", "tool"]),
            "content": text | parts,
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("function_call"),
            "call_id": st.sampled_from(["a", "b"]),
            "name": st.text(max_size=5),
            "arguments": st.sampled_from(['{"x":1}', "", "[]", "{", None]),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("function_call_output"),
            "call_id": st.sampled_from(["a", "b", "c"]),
            "output": text | parts,
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("reasoning"), "summary": st.lists(st.fixed_dictionaries({"text": text}), max_size=2)}
    ),
    json_values,
)
rollouts = st.fixed_dictionaries(
    {
        "responses_create_params": st.fixed_dictionaries(
            {"input": text | st.lists(items, max_size=3) | json_values, "tools": st.just([]) | json_values}
        ),
        "response": st.fixed_dictionaries(
            {"output": st.lists(items | st.lists(items, max_size=3), max_size=5) | json_values}
        ),
        "reward": scalars,
    }
)


def check(data: bytes) -> None:
    for decoder in DECODERS:
        assert isinstance(decoder.parse(data, "f", 1), Rollout | Reject)
        assert isinstance(decoder.parse_head(data, "f", 1), Head | Reject)


@SETTINGS
@given(json_values)
def test_any_json_value(value: Any) -> None:
    check(json.dumps(value).encode())


@SETTINGS
@given(rollouts)
def test_rollout_shaped_objects(value: dict[str, Any]) -> None:
    check(json.dumps(value).encode())


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)
