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

import msgspec

from rollforge.convert import parse_arguments
from rollforge.rewards import reward_of
from rollforge.rollout import Head, Reject
from rollforge.schema import Item, Params

KNOWN_ITEMS = frozenset({"message", "reasoning", "function_call", "function_call_output"})
MODEL_ITEMS = frozenset({"reasoning", "function_call"})
ROLES = frozenset({"user", "assistant", "system", "developer"})


def head_of(
    obj: Any, field_names: tuple[str, ...], line: bytes, file: str, line_no: int, arguments: str = "object"
) -> Head | Reject:
    """A :class:`Head` from a line decoded with ``rollforge.schema.line_type``, or the Reject conversion
    would also give."""
    response = obj.response
    if response is None or response is msgspec.UNSET:
        return Reject(
            file, line_no, "no_response", "the line has no response object (an input row, not a rollout)"
        )
    params = obj.responses_create_params
    if params in (None, msgspec.UNSET):
        return Reject(file, line_no, "no_prompt", "responses_create_params is missing")
    output = response.output
    if output is None:
        return Reject(file, line_no, "no_output", "response.output is missing")
    if output and isinstance(output[-1], list):
        output = output[-1]  # transition steps: the last transcript (conversion checks they extend)
    walked = _walk(output, _input_calls(params), arguments)
    if isinstance(walked, tuple) and isinstance(walked[0], str):
        return Reject(file, line_no, walked[0], walked[1])
    low, high, calls = walked
    reward, problem = reward_of(obj.reward)
    if problem is not None:
        return Reject(file, line_no, problem, f"reward is {obj.reward!r}")
    details = response.incomplete_details
    truncated = bool(isinstance(details, dict) and details.get("reason")) or response.status == "incomplete"
    return Head(file, line_no, line, obj, field_names, reward, len(output), truncated, calls, (low, high))


# Something that is not a quote, whitespace (plain or escaped) or a think tag: real text has begun.
_BLANK = rb"(?:\\[nrt]|\s|</?think>)*"
# Printable ASCII only: Python's strip() also removes no-break and other Unicode spaces, so a non-ASCII
# character (or a \u escape) is not sure to be text; such a rollout is then decided by its conversion.
_REAL = rb"(?:[\x21\x23-\x3b\x3d-\x5b\x5d-\x7e]|\\[^nrtfbu]|<(?!/?think>))"
_STRING_HAS_TEXT = re.compile(rb'"' + _BLANK + _REAL)
_PART_HAS_TEXT = re.compile(rb'"(?:text|refusal)"\s*:\s*"' + _BLANK + _REAL)  # searches stop at the first hit


def _leaves_a_message(kind: str, item: Item) -> bool:
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


def _walk(output: list[Any], calls_seen: set[str], arguments: str) -> tuple[Any, ...]:
    """(turns low, turns high, made a call), or (reject reason, message)."""
    low = high = 0
    in_turn = certain = calls = False
    for item in output:
        if isinstance(item, list):
            return "malformed_item", "response.output mixes items and lists of items"
        kind = item.type if item.type is not None or item.role is None else "message"
        if kind not in KNOWN_ITEMS:
            return "unsupported_item", f"item type {kind!r} has no chat form"
        if kind == "message" and item.role not in ROLES:
            return "unknown_role", f"message role {item.role!r} is not system/developer/user/assistant"
        if kind == "function_call":
            if item.call_id is not None:
                calls_seen.add(item.call_id)
            if arguments == "object" and not parse_arguments(item.arguments)[1]:
                return "invalid_tool_arguments", "a tool call's arguments are not a JSON object"
        elif kind == "function_call_output" and item.call_id not in calls_seen:
            return "orphan_tool_output", f"function_call_output {item.call_id!r} answers no earlier call"
        if kind in MODEL_ITEMS or item.role == "assistant":
            certain = certain or _leaves_a_message(kind, item)
            calls = calls or kind == "function_call"
            in_turn = True
        elif in_turn:
            low, high, in_turn, certain = low + certain, high + 1, False, False
    if in_turn:
        low, high = low + certain, high + 1
    return low, high, calls
