"""Tool schemas: the flat Responses shape -> the nested chat-completions shape."""

from __future__ import annotations

from typing import Any

import msgspec

from rollforge.limits import check_numbers
from rollforge.rollout import Unconvertible

UNDECLARED = "rows_calling_undeclared_tools"  # the export note counting them
UNDECLARED_WARNING = (
    "rows call a tool their rollout does not declare (its tools list has no function of that name): a trainer "
    "that renders the tools shows the model calls to functions it was never given; OpenAI's fine-tuning "
    "validation may reject such rows"
)
_cache: dict[bytes, list[dict[str, Any]]] = {}  # every rollout of an environment repeats the same tools


def chat_tools(raw: msgspec.Raw | list[Any] | None) -> list[dict[str, Any]]:
    """``{"type":"function","name",...}`` -> ``{"type":"function","function":{"name","description","parameters"}}``.
    Already-nested tools pass through; other tool types have no chat form."""
    if raw is None:
        return []
    if isinstance(raw, list):
        return _convert(raw)
    key = bytes(raw)
    if key not in _cache:
        if len(_cache) > 1024:
            _cache.clear()
        tools = msgspec.json.decode(key)
        check_numbers(tools, key, "the tools")
        _cache[key] = _convert(tools)
    return _cache[key]


def _convert(tools: Any) -> list[dict[str, Any]]:
    if not tools:
        return []
    if not isinstance(tools, list):
        raise Unconvertible("unsupported_tool", f"tools is a {type(tools).__name__}, not a list")
    out = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
            raise Unconvertible("unsupported_tool", f"tool type {kind!r} has no chat-completions form")
        if isinstance(tool.get("function"), dict):
            out.append({"type": "function", "function": tool["function"]})
            continue
        if not isinstance(tool.get("name"), str):
            raise Unconvertible("unsupported_tool", "a function tool has no name")
        fn = {k: tool[k] for k in ("name", "description", "parameters") if tool.get(k) is not None}
        out.append({"type": "function", "function": fn})
    return out


def calls_undeclared_tool(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> bool:
    """Whether an assistant turn calls a function the rollout's tools do not declare (NeMo Gym writes
    ``tools: []`` for some environments whose model still calls tools): a trainer that renders the tools into
    the prompt shows the model a call to a function it was never given."""
    declared = {t["function"].get("name") for t in tools if isinstance(t.get("function"), dict)}
    return any(
        call["function"]["name"] not in declared
        for m in messages
        if m["role"] == "assistant"
        for call in m.get("tool_calls") or ()
    )
