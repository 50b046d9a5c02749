"""The cheap first look at a decoded line: reward, fields, and the item types and roles of
``response.output`` (no text is decoded, nothing is converted). Filters that need only these drop most
rollouts before any conversion; the struct of a line that survives is then converted, and every filter
runs again on the real conversation.

Everything decided here is certain: reward, fields, item counts, tool use and truncation are exact; the
turn count is a range (a reasoning-only turn may or may not hold text), and the filters use its bounds.
"""

from __future__ import annotations

import re
from typing import Any

from rollforge.convert import (
    KINDS,
    MODEL_KINDS,
    ROLES,
    invalid_arguments,
    is_truncated,
    item_kind,
    mixed_steps,
    orphan_output,
    parse_arguments,
    required_parts,
    unknown_role,
    unsupported_item,
)
from rollforge.rewards import reward_of
from rollforge.rollout import Head, Reject, Unconvertible
from rollforge.schema import Item, Params


def head_of(
    obj: Any, field_names: tuple[str, ...], line: bytes, file: str, line_no: int, arguments: str = "object"
) -> Head | Reject:
    """A :class:`Head` from a line decoded with ``rollforge.schema.line_type``, or the Reject conversion
    would also give (the conversion's own rules and messages: see ``rollforge.convert``)."""
    try:
        params, output = required_parts(obj.responses_create_params, obj.response)
        if output and isinstance(output[-1], list):
            output = output[-1]  # transition steps: the last transcript (conversion checks they extend)
        low, high, calls = _walk(output, _input_calls(params), arguments)
    except Unconvertible as exc:
        return Reject(file, line_no, exc.reason, exc.message)
    reward, problem = reward_of(obj.reward)
    if problem is not None:
        return Reject(file, line_no, problem, f"reward is {obj.reward!r}")
    truncated = is_truncated(obj.response)
    return Head(file, line_no, line, obj, field_names, reward, len(output), truncated, calls, (low, high))


# Something that is not a quote, whitespace (plain or escaped) or a think tag: real text has begun.
_BLANK = rb"(?:\\[nrt]|\s|</?think>)*"
# Printable ASCII only: Python's strip() also removes no-break and other Unicode spaces, so a non-ASCII
# character (or a \u escape) is not sure to be text; such a rollout is then decided by its conversion.
_REAL = rb"(?:[\x21\x23-\x3b\x3d-\x5b\x5d-\x7e]|\\[^nrtfbu]|<(?!/?think>))"
_STRING_HAS_TEXT = re.compile(rb'"' + _BLANK + _REAL)
_PART_HAS_TEXT = re.compile(rb'"(?:text|refusal)"\s*:\s*"' + _BLANK + _REAL)  # searches stop at the first hit


def _leaves_a_message(kind: str | None, item: Item) -> bool:
    """Whether this model item surely yields an assistant message, judged from its raw bytes: a call
    always does; text or reasoning when it holds something besides think tags and whitespace (of
    reasoning, the head reads only summary texts, as conversion does first)."""
    if kind == "function_call":
        return True
    if kind == "reasoning":
        return any(_STRING_HAS_TEXT.match(part.text) for part in item.summary or ())
    raw = item.content
    if memoryview(raw)[0] == ord('"'):
        return _STRING_HAS_TEXT.match(raw) is not None
    return _PART_HAS_TEXT.search(raw) is not None


def _input_calls(params: Params) -> set[str]:
    """call_ids of function calls in the prompt (an output may answer a call made in the input)."""
    items = params.input
    if not isinstance(items, list):
        return set()
    return {i.call_id for i in items if i.call_id is not None}


def _walk(output: list[Any], calls_seen: set[str], arguments: str) -> tuple[int, int, bool]:
    """(turns low, turns high, made a call); raises Unconvertible for what conversion would reject."""
    low = high = 0
    in_turn = certain = calls = False
    for item in output:
        if isinstance(item, list):
            raise mixed_steps()
        kind = item_kind(item)
        if kind not in KINDS:
            raise unsupported_item(kind)
        if kind == "message" and item.role not in ROLES:
            raise unknown_role(item.role)
        if kind == "function_call":
            if item.call_id is not None:
                calls_seen.add(item.call_id)
            if arguments == "object" and not parse_arguments(item.arguments)[1]:
                raise invalid_arguments()
        elif kind == "function_call_output" and item.call_id not in calls_seen:
            raise orphan_output(item.call_id)
        if kind in MODEL_KINDS or item.role == "assistant":
            certain = certain or _leaves_a_message(kind, item)
            calls = calls or kind == "function_call"
            in_turn = True
        elif in_turn:
            low, high, in_turn, certain = low + certain, high + 1, False, False
    if in_turn:
        low, high = low + certain, high + 1
    return low, high, calls
