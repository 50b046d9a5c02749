"""A Chat Completions reply -> an OpenAI Responses object, in the item shapes NeMo Gym's rollouts carry.

=======================================  ===================================================================
chat completion                          ``response.output`` items, in this order
=======================================  ===================================================================
``reasoning_content`` (or ``reasoning``) ``{"type": "reasoning", "summary": [{"type": "summary_text",
                                         "text"}]}``
``<think>x</think>`` in ``content``      the same reasoning item from ``x`` (a lone ``</think>``: the text
(no reasoning field)                     before it), as :func:`rollforge.convert.split_think` splits it
``content`` (the rest)                   ``{"type": "message", "role": "assistant", "content":
                                         [{"type": "output_text", "text"}]}``; left out when empty and
                                         the turn only calls tools
``tool_calls[]``                         ``{"type": "function_call", "call_id", "name", "arguments"}``
``finish_reason == "length"``            ``status: "incomplete"``, ``incomplete_details.reason:
                                         "max_output_tokens"`` (rollforge then counts it as truncated)
``usage``                                ``input_tokens``, ``output_tokens``, ``total_tokens``
=======================================  ===================================================================
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from rollforge.convert import split_think


class BadCompletion(ValueError):
    """A 200 reply that is not a chat completion (no ``choices[0].message``)."""


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _text(content: Any) -> str:
    """Message content as text: a string, or the text of a list of parts (some servers send parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    raise BadCompletion(f"message content is a {type(content).__name__}")


def _function_call(call: Any) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise BadCompletion("a tool call has no function name")
    arguments = fn.get("arguments")
    if not isinstance(arguments, str):  # some servers send parsed arguments; Responses carries a JSON string
        arguments = orjson.dumps(arguments if arguments is not None else {}).decode()
    return {
        "type": "function_call",
        "id": _id("fc"),
        "call_id": call.get("id") or _id("call"),
        "name": fn["name"],
        "arguments": arguments,
        "status": "completed",
    }


def output_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The Responses output items of one chat ``message`` (see the module table)."""
    content = _text(message.get("content"))
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if not isinstance(reasoning, str) or not reasoning:
        reasoning = None
        if "think>" in content:
            reasoning, content, _ = split_think(content)
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise BadCompletion("tool_calls is not a list")
    items: list[dict[str, Any]] = []
    if reasoning:
        summary = [{"type": "summary_text", "text": reasoning}]
        items.append({"type": "reasoning", "id": _id("rs"), "summary": summary, "encrypted_content": None})
    if content or not calls:
        part = {"type": "output_text", "text": content, "annotations": [], "logprobs": []}
        items.append(
            {
                "type": "message",
                "id": _id("msg"),
                "role": "assistant",
                "status": "completed",
                "content": [part],
            }
        )
    items.extend(_function_call(call) for call in calls)
    return items


def chat_to_response(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """The Responses object for a chat completion's first choice (raises :class:`BadCompletion`)."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BadCompletion("the reply has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise BadCompletion("choices[0] has no message")
    truncated = choices[0].get("finish_reason") == "length"
    response: dict[str, Any] = {
        "id": _id("resp"),
        "object": "response",
        "created_at": float(completion.get("created") or time.time()),
        "model": completion.get("model") or model,
        "status": "incomplete" if truncated else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "error": None,
        "output": output_items(message),
    }
    usage = completion.get("usage")
    if isinstance(usage, dict):
        response["usage"] = {
            "input_tokens": usage.get("prompt_tokens"),
            "output_tokens": usage.get("completion_tokens"),
            "total_tokens": usage.get("total_tokens"),
        }
    return response


def assistant_text(response: dict[str, Any]) -> str:
    """The assistant's answer text (output_text parts of assistant messages; reasoning excluded)."""
    texts = []
    for item in response.get("output") or []:
        if isinstance(item, dict) and item.get("type") == "message" and item.get("role") == "assistant":
            for part in item.get("content") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    texts.append(part["text"])
    return "\n".join(texts).strip()
