"""Rendering choices applied on export: where reasoning goes, how tool-call arguments are typed, and
trimming what an SFT row must not end with.

Internally an assistant message keeps reasoning in ``reasoning_content`` and arguments as the original JSON
string (``msgspec.Raw`` in pipelines, ``str`` for plain readers); these functions return new message dicts
and never mutate their input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from rollforge.schema import Raw, text

REASONING_MODES = ("field", "think", "drop")  # reasoning_content | inline <think> tags | dropped
ARGUMENT_MODES = ("object", "string")  # tool-call arguments parsed into an object | kept as JSON text


@dataclass(frozen=True)
class Styling:
    """How an output renders messages: where reasoning goes, how arguments are typed, and whether a tool
    message keeps the ``name`` of the function it answers."""

    reasoning: str = "field"
    arguments: str = "object"
    tool_names: bool = True

    def apply(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        styled = style(messages, self.reasoning, self.arguments)
        return styled if self.tool_names else without_tool_names(styled)


def style(
    messages: list[dict[str, Any]], reasoning: str = "field", arguments: str = "object"
) -> list[dict[str, Any]]:
    return [style_message(m, reasoning, arguments) if m["role"] == "assistant" else m for m in messages]


def style_message(msg: dict[str, Any], reasoning: str, arguments: str) -> dict[str, Any]:
    out = dict(msg)
    thought = out.pop("reasoning_content", None)
    if thought is not None:
        if reasoning == "field":
            out["reasoning_content"] = thought
        elif reasoning == "think":
            out["content"] = f"<think>\n{text(thought)}\n</think>\n\n{text(out.get('content'))}"
    if "tool_calls" in out and arguments == "object":
        out["tool_calls"] = [_object_arguments(call) for call in out["tool_calls"]]
    return out


def _object_arguments(call: dict[str, Any]) -> dict[str, Any]:
    """The arguments string's JSON text, as an object. Raw stays raw: its text is copied, not parsed.
    (The reader rejects arguments that are not a JSON object in this mode, so the text is one.)"""
    fn = call["function"]
    args = fn["arguments"]
    if isinstance(args, Raw):
        body = msgspec.json.decode(args).encode()
        # Pretty-printed arguments: copied as they are, a raw newline would split the JSONL row in two.
        if b"\n" in body or b"\r" in body:
            body = msgspec.json.format(body, indent=0)
        args = Raw(body)
    elif isinstance(args, str):
        args = msgspec.json.decode(args)
    return {**call, "function": {**fn, "arguments": args}}


def trim_trailing(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Drop messages after the last assistant message (an SFT row must end on the model's turn)."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    return messages[: last + 1], len(messages) - last - 1


def without_tool_names(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool messages without ``name``: OpenAI's fine-tuning format has none (``tool_call_id`` names the call)."""
    return [{k: v for k, v in m.items() if k != "name"} if m["role"] == "tool" else m for m in messages]


def tools_json(tools: list[dict[str, Any]]) -> str:
    """Tools as a JSON string: Arrow/Parquet would fill heterogeneous schemas with nulls otherwise."""
    return msgspec.json.encode(tools).decode()
