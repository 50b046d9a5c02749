"""NeMo Gym rollout (OpenAI Responses items) -> chat messages. One rule table, owned here.

Conversation = ``responses_create_params.instructions`` + ``responses_create_params.input`` followed by
``response.output``. Rules (README "Conversion rules" repeats this table):

===============================================  ===========================================================
Responses shape                                  chat form
===============================================  ===========================================================
``input`` is a string                            one ``user`` message
item with ``role`` but no ``type``               a ``message`` item
``instructions`` + leading system/developer      one leading ``system`` message (parts joined by a blank line)
system/developer message later on                a ``system`` message in place (fact ``late_system``)
user message                                     ``user``; inside the output after the first model turn it is
                                                 an environment turn (fact ``env_user_turns``), before it part
                                                 of the prompt (fact ``prompt_in_output``)
one model turn: reasoning, assistant messages,   ONE ``assistant`` message: ``reasoning_content``, ``content``
function calls (until a non-model item)          (texts concatenated as NeMo Gym does), ``tool_calls``
function_call                                    ``{"id": call_id, "type": "function", "function":
                                                 {"name", "arguments"}}``; ``arguments`` kept as the original
                                                 JSON string here, rendered as an object or string on export
function_call_output                             ``tool`` message with ``tool_call_id``, ``name`` (of its call)
reasoning summary / reasoning_text content       ``reasoning_content`` (several joined by a blank line)
reasoning with no text (hidden, encrypted)       nothing to train on (fact ``reasoning_hidden``)
``<think>x</think>`` in assistant text           ``x`` -> ``reasoning_content``; a lone ``</think>``: the text
                                                 before it; an unclosed ``<think>``: the text after it
text parts ``input_text``/``output_text``        text; ``refusal`` parts -> text (fact ``refusals``)
``input_image`` part                             content becomes a list of OpenAI chat parts with an
                                                 ``image_url`` part (fact ``images``)
output as a list of lists (transition steps)     the last transcript, if each step extends the previous one
function calls never answered                    kept in ``tool_calls`` (fact ``unanswered_calls``)
tools ``{"type":"function","name",...}``         ``{"type":"function","function":{"name","description",
                                                 "parameters"}}``
===============================================  ===========================================================

What has no faithful chat form raises :class:`Unconvertible` with a stable reason code (see
``rollforge.reasons``); nothing is dropped or rewritten silently. The prompt is every message before the
first model-produced turn; input and output are never merged into one message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

MODEL_ITEMS = frozenset({"message:assistant", "reasoning", "function_call"})
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


class Unconvertible(Exception):
    """A rollout that has no faithful chat form; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(slots=True)
class Conversation:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    prompt_len: int  # leading messages that form the prompt (before the first model-produced turn)
    facts: dict[str, int] = field(default_factory=dict)  # what the conversion met, for inspect/reports
    truncated: bool = False
    n_items: int = 0  # items in response.output (the tutorial's "turns")


@dataclass(slots=True)
class _Turn:
    """Accumulates one model turn until a non-model item flushes it."""

    reasoning: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> dict[str, Any] | None:
        if not (self.reasoning or self.text or self.calls):
            return None
        msg: dict[str, Any] = {"role": "assistant", "content": "".join(self.text)}
        if self.reasoning:
            msg["reasoning_content"] = "\n\n".join(self.reasoning)
        if self.calls:
            msg["tool_calls"] = self.calls
        return msg


class _Builder:
    """Walks items in order, building messages and counting facts."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.facts: dict[str, int] = {}
        self.turn = _Turn()
        self.call_names: dict[str, str] = {}
        self.answered: set[str] = set()
        self.in_output = False
        self.prompt_len: int | None = None

    def fact(self, name: str, n: int = 1) -> None:
        self.facts[name] = self.facts.get(name, 0) + n

    def flush(self) -> None:
        msg = self.turn.message()
        if msg is not None:
            self.messages.append(msg)
        self.turn = _Turn()

    def add(self, item: Any) -> None:
        if not isinstance(item, dict):
            raise Unconvertible("malformed_item", f"an item is a {type(item).__name__}, not an object")
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"
        self.fact(f"item:{kind}" if kind != "message" else f"item:message:{item.get('role')}")
        if kind == "message":
            self._message(item)
        elif kind == "reasoning":
            self._model_turn_starts()
            self._reasoning(item)
        elif kind == "function_call":
            self._model_turn_starts()
            self._function_call(item)
        elif kind == "function_call_output":
            self.flush()
            self._function_output(item)
        else:
            raise Unconvertible("unsupported_item", f"item type {kind!r} has no chat form")

    def _model_turn_starts(self) -> None:
        if self.in_output and self.prompt_len is None:
            self.flush()
            self.prompt_len = len(self.messages)

    def _message(self, item: dict[str, Any]) -> None:
        role = item.get("role")
        if role == "assistant":
            if self.in_output:
                self._model_turn_starts()
            content = message_content(item.get("content"), self)
            if not isinstance(content, str):
                raise Unconvertible("unsupported_content", "an assistant message holds an image part")
            self._assistant_text(content)
            return
        if role not in ("user", "system", "developer"):
            raise Unconvertible("unknown_role", f"message role {role!r} is not system/developer/user/assistant")
        self.flush()
        content = message_content(item.get("content"), self)
        if role == "user":
            if self.in_output:
                self.fact("env_user_turns" if self.prompt_len is not None else "prompt_in_output")
            self.messages.append({"role": "user", "content": content})
            return
        if role == "developer":
            self.fact("developer_messages")
        leading = all(m["role"] == "system" for m in self.messages)
        if leading and self.messages and isinstance(content, str):
            self.messages[0]["content"] += "\n\n" + content
            return
        if not leading:
            self.fact("late_system")
        self.messages.append({"role": "system", "content": content})

    def _assistant_text(self, text: str) -> None:
        reasoning, answer, shape = split_think(text)
        if shape:
            self.fact(shape)
        if reasoning is not None:
            self.turn.reasoning.append(reasoning)
        if answer:
            self.turn.text.append(answer)

    def _reasoning(self, item: dict[str, Any]) -> None:
        texts = [p.get("text") for p in item.get("summary") or [] if isinstance(p, dict)]
        texts = [t for t in texts if isinstance(t, str) and t]
        if not texts and isinstance(item.get("content"), list):
            texts = [p.get("text") for p in item["content"] if isinstance(p, dict) and p.get("text")]
        if texts:
            self.fact("reasoning_summary")
            self.turn.reasoning.append("\n\n".join(texts))
        else:
            self.fact("reasoning_encrypted" if item.get("encrypted_content") else "reasoning_hidden")

    def _function_call(self, item: dict[str, Any]) -> None:
        call_id, name, args = item.get("call_id"), item.get("name"), item.get("arguments")
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise Unconvertible("malformed_item", "a function_call lacks a string call_id or name")
        if args is None or (isinstance(args, str) and not args.strip()):
            args = "{}"
        elif not isinstance(args, str):  # some agents store parsed arguments
            args = orjson.dumps(args).decode()
        if not is_json_object(args):
            self.fact("invalid_arguments")
        self.call_names[call_id] = name
        if len(self.turn.calls) == 1:
            self.fact("parallel_calls")
        self.turn.calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": args}})

    def _function_output(self, item: dict[str, Any]) -> None:
        call_id = item.get("call_id")
        if call_id not in self.call_names:
            raise Unconvertible("orphan_tool_output", f"function_call_output {call_id!r} answers no earlier call")
        self.answered.add(call_id)
        output = item.get("output")
        content = message_content(output, self) if output is not None else ""
        self.messages.append(
            {"role": "tool", "tool_call_id": call_id, "name": self.call_names[call_id], "content": content}
        )


def split_think(text: str) -> tuple[str | None, str, str | None]:
    """Split inline reasoning out of assistant text: (reasoning or None, answer, shape fact or None)."""
    if "<think>" in text:
        found = _THINK.findall(text)
        rest = _THINK.sub("", text)
        if "<think>" in rest:  # unclosed: the generation stopped inside its reasoning
            before, _, after = rest.partition("<think>")
            found.append(after)
            rest = before
            shape = "think_unclosed"
        else:
            shape = "think_inline"
        reasoning = "\n\n".join(t.strip("\n") for t in found)
        return reasoning, rest.lstrip(), shape
    if "</think>" in text:  # the chat template opened the tag; only the close is in the text
        before, _, after = text.partition("</think>")
        return before.strip("\n"), after.lstrip(), "think_lone_close"
    return None, text, None


def message_content(content: Any, builder: _Builder) -> str | list[dict[str, Any]]:
    """A string, or OpenAI chat parts when images are present (text-only parts collapse to a string)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise Unconvertible("malformed_item", f"message content is a {type(content).__name__}")
    parts: list[dict[str, Any]] = []
    for part in content:
        parts.append(_part(part, builder))
    if any(p["type"] != "text" for p in parts):
        return parts
    return "".join(p["text"] for p in parts)


def _part(part: Any, builder: _Builder) -> dict[str, Any]:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        raise Unconvertible("malformed_item", f"a content part is a {type(part).__name__}")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "refusal":
        builder.fact("refusals")
        return {"type": "text", "text": part.get("refusal") or ""}
    if kind == "input_image":
        builder.fact("images")
        url = part.get("image_url") or part.get("file_id")
        if not isinstance(url, str):
            raise Unconvertible("unsupported_content", "an input_image part has no image_url")
        return {"type": "image_url", "image_url": {"url": url, "detail": part.get("detail") or "auto"}}
    raise Unconvertible("unsupported_content", f"content part type {kind!r} has no chat form")


def is_json_object(arguments: str) -> bool:
    try:
        return isinstance(orjson.loads(arguments), dict)
    except orjson.JSONDecodeError:
        return False


def chat_tools(tools: Any) -> list[dict[str, Any]]:
    """Responses tools (flat) -> chat-completions tools (nested). Already-nested tools pass through."""
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


def flatten_output(output: Any) -> list[Any]:
    """``response.output``; a list of transcripts (one per transition step) becomes the last transcript."""
    if not isinstance(output, list):
        raise Unconvertible("no_output", f"response.output is {type(output).__name__}, not a list")
    if not output or not any(isinstance(step, list) for step in output):
        return output
    if not all(isinstance(step, list) for step in output):
        raise Unconvertible("malformed_item", "response.output mixes items and lists of items")
    for prev, step in zip(output, output[1:], strict=False):
        if step[: len(prev)] != prev:
            raise Unconvertible(
                "nested_output_not_cumulative", "nested response.output steps do not extend one another"
            )
    return output[-1]


def _start(params: dict[str, Any]) -> _Builder:
    """A builder holding the prompt side: instructions + input, flushed."""
    builder = _Builder()
    instructions = params.get("instructions")
    if isinstance(instructions, str) and instructions:
        builder.messages.append({"role": "system", "content": instructions})
    inputs = params.get("input")
    if isinstance(inputs, str):
        inputs = [{"role": "user", "content": inputs}]
    elif inputs is None:
        inputs = []
    elif not isinstance(inputs, list):
        raise Unconvertible("no_prompt", f"responses_create_params.input is a {type(inputs).__name__}")
    for item in inputs:
        builder.add(item)
    builder.flush()
    return builder


def convert_prompt(params: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chat messages and tools of a task's ``responses_create_params`` (for calling a chat endpoint)."""
    builder = _start(params)
    return builder.messages, chat_tools(params.get("tools"))


def convert(row: dict[str, Any]) -> Conversation:
    """Convert one decoded rollout row to a :class:`Conversation` (raises :class:`Unconvertible`)."""
    params = row.get("responses_create_params")
    if not isinstance(params, dict):
        raise Unconvertible("no_prompt", "responses_create_params is missing")
    response = row.get("response")
    if not isinstance(response, dict):
        raise Unconvertible("no_response", "the line has no response object (an input row, not a rollout)")
    output = flatten_output(response.get("output"))
    builder = _start(params)
    builder.in_output = True
    for item in output:
        builder.add(item)
    builder.flush()
    return _finish(builder, params, response, len(output))


def _finish(builder: _Builder, params: dict[str, Any], response: dict[str, Any], n_items: int) -> Conversation:
    messages = builder.messages
    prompt_len = builder.prompt_len if builder.prompt_len is not None else len(messages)
    if prompt_len == 0:
        raise Unconvertible("no_prompt", "no message precedes the model's first turn")
    unanswered = set(builder.call_names) - builder.answered
    if unanswered:
        builder.fact("unanswered_calls", len(unanswered))
    details = response.get("incomplete_details")
    truncated = bool(isinstance(details, dict) and details.get("reason")) or response.get("status") == "incomplete"
    if truncated:
        builder.fact("truncated")
    return Conversation(
        messages=messages,
        tools=chat_tools(params.get("tools")),
        prompt_len=prompt_len,
        facts=builder.facts,
        truncated=truncated,
        n_items=n_items,
    )
