"""What the report reads off one chat conversation: text size, tool calls, reasoning, an answer digest.

Rows come from released files (``tools`` a JSON string, tool-call ``arguments`` objects) or straight from
rollouts (``tools`` a list, ``arguments`` JSON strings); every helper here accepts both shapes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import xxhash

from rollforge.errors import RollforgeError

Message = dict[str, Any]


def parse_tools(tools: Any) -> list[dict[str, Any]]:
    """The tools list of a row: a JSON string (TRL rows), a list (rollouts), or nothing."""
    if tools is None or tools == "":
        return []
    if isinstance(tools, str):
        try:
            tools = orjson.loads(tools)
        except orjson.JSONDecodeError as exc:
            raise RollforgeError(f"a row's `tools` is not valid JSON: {exc}") from exc
    if not isinstance(tools, list):
        raise RollforgeError("a row's `tools` is not a list of tool schemas")
    return tools


def tools_chars(tools: Any) -> int:
    """Characters of the tools schemas as compact JSON (what a chat template renders into the prompt).

    No tools (``"[]"`` included) is 0: a template renders nothing for them.
    """
    if not parse_tools(tools):
        return 0
    return len(tools) if isinstance(tools, str) else len(orjson.dumps(tools).decode())


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list (images carry no text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()


def message_text(message: Message) -> str:
    """Every trainable character of a message: reasoning, content, and each tool call's name + arguments."""
    parts = [message.get("reasoning_content") or "", content_text(message.get("content"))]
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        parts.append(str(function.get("name") or ""))
        parts.append(_arguments_text(function.get("arguments") or {}))
    return "".join(parts)


def conversation_chars(messages: Iterable[Message], tools: Any) -> int:
    """Characters of the messages' text (see :func:`message_text`) plus the tools JSON: no template overhead."""
    return sum(len(message_text(m)) for m in messages) + tools_chars(tools)


def calls_tools(messages: Iterable[Message]) -> bool:
    return any(m.get("role") == "assistant" and m.get("tool_calls") for m in messages)


def has_reasoning(messages: Iterable[Message]) -> bool:
    """An assistant message with reasoning text, in ``reasoning_content`` or inline ``<think>`` tags."""
    for m in messages:
        if m.get("role") != "assistant":
            continue
        reasoning = m.get("reasoning_content")
        if (isinstance(reasoning, str) and reasoning.strip()) or "</think>" in content_text(m.get("content")):
            return True
    return False


def assistant_turns(messages: Iterable[Message]) -> int:
    return sum(1 for m in messages if m.get("role") == "assistant")


def answer_digest(messages: Iterable[Message]) -> int | None:
    """64-bit hash of the assistant messages' text and calls; None when there is no assistant message.

    Tool-call ids are left out on purpose: they are per-rollout (``call_19_3_0_0``), so two identical
    answers would otherwise never match.
    """
    answer = [
        [
            m.get("reasoning_content") or "",
            content_text(m.get("content")),
            [
                [
                    (c.get("function") or {}).get("name"),
                    _arguments_text((c.get("function") or {}).get("arguments")),
                ]
                for c in m.get("tool_calls") or ()
            ],
        ]
        for m in messages
        if m.get("role") == "assistant"
    ]
    return xxhash.xxh3_64_intdigest(orjson.dumps(answer)) if answer else None
