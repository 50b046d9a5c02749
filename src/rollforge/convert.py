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
reasoning with no text (hidden, encrypted)       nothing to train on (facts ``reasoning_hidden`` /
                                                 ``reasoning_encrypted``); where it was is kept in
                                                 ``Conversation.hidden_reasoning`` for viewers
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
first model-produced turn; input and output are never merged into one message. Prompt messages hold
plain strings; generated messages may hold ``msgspec.Raw`` text (see ``rollforge.schema``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from rollforge.limits import check_numbers
from rollforge.rollout import Unconvertible
from rollforge.schema import EMPTY, NULL, Item, Params, Part, Raw, plain
from rollforge.thinking import split_think
from rollforge.tools import chat_tools

_PARTS = msgspec.json.Decoder(list[Part])
_THINK_TAG = re.compile(rb"think(?:>|\\u003[eE])")  # Go-style writers escape ">" as \u003e
_QUOTE, _BRACKET = ord('"'), ord("[")
_FACT_KEYS: dict[tuple[str | None, str | None], str] = {
    ("message", r): f"item:message:{r}" for r in ("user", "assistant", "system", "developer")
}
_FACT_KEYS |= {(k, None): f"item:{k}" for k in ("function_call", "function_call_output", "reasoning")}
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})


# The vocabulary the cheap first look (rollforge.head) shares with the conversion: what an item is, which
# ones the model produces, when a response was cut off, and what to say about a line that has no chat form.
KINDS = frozenset({"message", "reasoning", "function_call", "function_call_output"})  # with a chat form
MODEL_KINDS = frozenset({"reasoning", "function_call"})  # the model's alone (as is an assistant message)
ROLES = frozenset({"system", "developer", "user", "assistant"})


def item_kind(item: Item) -> str | None:
    """An item's kind: its ``type``, or ``message`` for an item with a ``role`` and no ``type``."""
    return item.type if item.type is not None or item.role is None else "message"


def is_truncated(response: Any) -> bool:
    """The response was cut off: ``incomplete_details`` names a reason, or the status says incomplete."""
    details = response.incomplete_details
    return bool(isinstance(details, dict) and details.get("reason")) or response.status == "incomplete"


def required_parts(params: Any, response: Any) -> tuple[Params, list[Any]]:
    """(create params, ``response.output``) of a line that has the three parts every rollout needs; raises
    what is missing."""
    if params is None or params is msgspec.UNSET:
        raise Unconvertible("no_prompt", "responses_create_params is missing")
    if response is None or response is msgspec.UNSET:
        raise Unconvertible("no_response", "the line has no response object (an input row, not a rollout)")
    if response.output is None:
        raise Unconvertible("no_output", "response.output is missing")
    return params, response.output


def unsupported_item(kind: str | None) -> Unconvertible:
    return Unconvertible("unsupported_item", f"item type {kind!r} has no chat form")


def unknown_role(role: str | None) -> Unconvertible:
    return Unconvertible("unknown_role", f"message role {role!r} is not system/developer/user/assistant")


def orphan_output(call_id: str | None) -> Unconvertible:
    return Unconvertible("orphan_tool_output", f"function_call_output {call_id!r} answers no earlier call")


def mixed_steps() -> Unconvertible:
    return Unconvertible("malformed_item", "response.output mixes items and lists of items")


def invalid_arguments() -> Unconvertible:
    return Unconvertible("invalid_tool_arguments", "a tool call's arguments are not a JSON object")


@dataclass(slots=True)
class Conversation:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    prompt_len: int  # leading messages that form the prompt (before the first model-produced turn)
    facts: dict[str, int] = field(default_factory=dict)  # what the conversion met, for inspect/reports
    truncated: bool = False
    n_items: int = 0  # items in response.output (the tutorial's "turns")
    assistant_turns: int = 0  # assistant messages after the prompt
    uses_tools: bool = False
    # (message index, "hidden" | "encrypted") per model turn that had reasoning without text: the index of
    # that turn's assistant message, or of the message after it when the turn produced nothing else.
    hidden_reasoning: tuple[tuple[int, str], ...] = ()


class _Builder:
    """Walks items in order, building messages and counting facts."""

    __slots__ = (
        "answered",
        "call_names",
        "calls",
        "facts",
        "hidden",
        "hidden_at",
        "in_output",
        "messages",
        "prompt_len",
        "reasoning",
        "texts",
    )

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.facts: dict[str, int] = {}
        self.reasoning: list[Any] = []  # the open model turn: reasoning, text, calls
        self.texts: list[Any] = []
        self.calls: list[dict[str, Any]] = []
        self.call_names: dict[str, str] = {}
        self.answered: set[str] = set()
        self.in_output = False
        self.prompt_len: int | None = None
        self.hidden: str | None = None  # the open model turn had reasoning without text
        self.hidden_at: list[tuple[int, str]] = []

    def fact(self, name: str, n: int = 1) -> None:
        self.facts[name] = self.facts.get(name, 0) + n

    def flush(self) -> None:
        if self.hidden is not None:
            self.hidden_at.append((len(self.messages), self.hidden))
            self.hidden = None
        if not (self.reasoning or self.texts or self.calls):
            return
        msg: dict[str, Any] = {"role": "assistant", "content": _join(self.texts, "")}
        if self.reasoning:
            msg["reasoning_content"] = _join(self.reasoning, "\n\n")
        if self.calls:
            msg["tool_calls"] = self.calls
        self.messages.append(msg)
        self.reasoning, self.texts, self.calls = [], [], []

    def add(self, item: Item) -> None:
        kind = item_kind(item)
        key = _FACT_KEYS.get((kind, item.role)) or (
            f"item:message:{item.role}" if kind == "message" else f"item:{kind}"
        )
        self.facts[key] = self.facts.get(key, 0) + 1
        if kind == "message":
            self._message(item)
        elif kind == "function_call":
            self._model_turn_starts()
            self._function_call(item)
        elif kind == "function_call_output":
            self.flush()
            self._function_output(item)
        elif kind == "reasoning":
            self._model_turn_starts()
            self._reasoning(item)
        else:
            raise unsupported_item(kind)

    def _model_turn_starts(self) -> None:
        if self.prompt_len is None and self.in_output:
            self.flush()
            self.prompt_len = len(self.messages)

    def _message(self, item: Item) -> None:
        role = item.role
        if role == "assistant":
            self._model_turn_starts()
            content = self.content(item.content)
            if isinstance(content, list):
                raise Unconvertible("unsupported_content", "an assistant message holds an image part")
            self._assistant_text(content)
            return
        if role not in ROLES:
            raise unknown_role(role)
        self.flush()
        content = self.content(item.content)
        if role == "user":
            if self.in_output:
                self.fact("env_user_turns" if self.prompt_len is not None else "prompt_in_output")
            self.messages.append({"role": "user", "content": content})
            return
        if role == "developer":
            self.fact("developer_messages")
        self._system(plain(content))

    def _system(self, content: Any) -> None:
        leading = all(m["role"] == "system" for m in self.messages)
        if (
            leading
            and self.messages
            and isinstance(content, str)
            and isinstance(self.messages[0]["content"], str)
        ):
            self.messages[0]["content"] += "\n\n" + content
            return
        if not leading:
            self.fact("late_system")
        self.messages.append({"role": "system", "content": content})

    def _assistant_text(self, content: Any) -> None:
        if isinstance(content, Raw):
            if not _THINK_TAG.search(content):  # the common case: keep the raw text, decode nothing
                if content != EMPTY:
                    self.texts.append(content)
                return
            content = msgspec.json.decode(content)
        reasoning, answer, shape = split_think(content)
        if shape:
            self.fact(shape)
        if reasoning:  # a bare "</think>" leaves no reasoning text: no turn to train on
            self.reasoning.append(reasoning)
        if answer:
            self.texts.append(answer)

    def _reasoning(self, item: Item) -> None:
        texts = [t for p in item.summary or () if (t := _string(p.text)) != EMPTY]
        if not texts and memoryview(item.content)[0] == _BRACKET:
            try:
                parts = _PARTS.decode(item.content)
            except msgspec.ValidationError as exc:
                raise Unconvertible(
                    "malformed_item", f"a reasoning content part is malformed: {exc}"
                ) from None
            texts = [t for p in parts if (t := _string(p.text)) != EMPTY]
        if texts:
            self.fact("reasoning_summary")
            self.reasoning.append(_join(texts, "\n\n"))
        else:
            kind = "hidden" if item.encrypted_content in (NULL, EMPTY) else "encrypted"
            self.fact(f"reasoning_{kind}")
            if self.hidden != "encrypted":  # a turn with both kinds is shown as encrypted
                self.hidden = kind

    def _function_call(self, item: Item) -> None:
        call_id, name = item.call_id, item.name
        if call_id is None or name is None:
            raise Unconvertible("malformed_item", "a function_call lacks a string call_id or name")
        args, is_object = parse_arguments(item.arguments)
        if not is_object:
            self.fact("invalid_arguments")
        self.call_names[call_id] = name
        if len(self.calls) == 1:
            self.fact("parallel_calls")
        self.calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": args}})

    def _function_output(self, item: Item) -> None:
        call_id = item.call_id
        if call_id is None or call_id not in self.call_names:
            raise orphan_output(call_id)
        self.answered.add(call_id)
        content = self.content(item.output)
        self.messages.append(
            {"role": "tool", "tool_call_id": call_id, "name": self.call_names[call_id], "content": content}
        )

    def content(self, raw: Raw) -> Any:
        """A content value: a Raw JSON string (as is), or parts -> text, or chat parts when images."""
        head = memoryview(raw)[0]
        if head == _QUOTE:
            return raw
        if raw == NULL:
            return EMPTY
        if head != _BRACKET:
            raise Unconvertible("malformed_item", "message content is neither a string nor a list of parts")
        try:
            parts = _PARTS.decode(raw)
        except msgspec.ValidationError as exc:
            raise Unconvertible("malformed_item", f"a content part is malformed: {exc}") from None
        converted = [self._part(p) for p in parts]
        if any(p["type"] != "text" for p in converted):
            return plain(converted)
        if len(converted) == 1:
            return converted[0]["text"]
        return _join([p["text"] for p in converted], "")

    def _part(self, part: Part) -> dict[str, Any]:
        kind = part.type
        if kind in _TEXT_PARTS:
            return {"type": "text", "text": _string(part.text)}
        if kind == "refusal":
            self.fact("refusals")
            return {"type": "text", "text": _string(part.refusal)}
        if kind == "input_image":
            self.fact("images")
            url = part.image_url or part.file_id
            if not isinstance(url, str):
                raise Unconvertible("unsupported_content", "an input_image part has no image_url")
            return {"type": "image_url", "image_url": {"url": url, "detail": part.detail or "auto"}}
        raise Unconvertible("unsupported_content", f"content part type {kind!r} has no chat form")


def _string(raw: Raw) -> Raw:
    """A part's text as a Raw JSON string (null reads as empty); a number or object there is malformed."""
    if raw == NULL:
        return EMPTY
    if memoryview(raw)[0] != _QUOTE:
        raise Unconvertible("malformed_item", "a content part's text is not a string")
    return raw


def _join(pieces: list[Any], sep: str) -> Any:
    """One piece stays as it is (possibly Raw); several are decoded and joined."""
    if len(pieces) == 1:
        return pieces[0]
    if not pieces:
        return EMPTY
    return sep.join(plain(p) for p in pieces)


def parse_arguments(raw: Raw) -> tuple[Raw, bool]:
    """(arguments as a Raw JSON string, whether its text is a JSON object)."""
    if raw in (NULL, EMPTY):
        return Raw(b'"{}"'), True
    value = msgspec.json.decode(raw)
    if not isinstance(value, str):  # some agents store parsed arguments: keep them, as a string
        check_numbers(value, raw, "a tool call's arguments")
        return Raw(msgspec.json.encode(msgspec.json.encode(value).decode())), isinstance(value, dict)
    if not value.strip():
        return Raw(b'"{}"'), True
    try:
        parsed = msgspec.json.decode(value)
    except msgspec.DecodeError:
        return raw, False
    check_numbers(parsed, raw, "a tool call's arguments")
    return raw, isinstance(parsed, dict)


def flatten_output(output: list[Any]) -> list[Item]:
    """``response.output``; a list of transcripts (one per transition step) becomes the last transcript."""
    if not output or not any(isinstance(step, list) for step in output):
        return output
    if not all(isinstance(step, list) for step in output):
        raise mixed_steps()
    for prev, step in itertools.pairwise(output):
        if step[: len(prev)] != prev:
            raise Unconvertible(
                "nested_output_not_cumulative", "nested response.output steps do not extend one another"
            )
    return output[-1]


def _start(params: Params) -> _Builder:
    """A builder holding the prompt side: instructions + input, flushed."""
    builder = _Builder()
    if isinstance(params.instructions, str) and params.instructions:
        builder.messages.append({"role": "system", "content": params.instructions})
    inputs = params.input
    if isinstance(inputs, str):
        builder.messages.append({"role": "user", "content": inputs})
        return builder
    for item in inputs or ():
        builder.add(item)
    builder.flush()
    return builder


def convert_prompt(params: Params | dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chat messages and tools of a task's ``responses_create_params`` (for calling a chat endpoint)."""
    if isinstance(params, dict):
        params = _params_from_dict(params)  # through JSON: text fields are Raw, which convert() cannot make
    builder = _start(params)
    return plain(builder.messages), chat_tools(params.tools)


def _params_from_dict(params: dict[str, Any]) -> Params:
    return msgspec.json.decode(msgspec.json.encode(params), type=Params)


def convert(params: Params | None, response: Any) -> Conversation:
    """Convert a decoded rollout (its create-params and response) to a :class:`Conversation`."""
    params, output = required_parts(params, response)
    output = flatten_output(output)
    builder = _start(params)
    builder.in_output = True
    for item in output:
        builder.add(item)
    builder.flush()
    return _finish(builder, params, response, len(output))


def _finish(builder: _Builder, params: Params, response: Any, n_items: int) -> Conversation:
    messages = builder.messages
    prompt_len = builder.prompt_len if builder.prompt_len is not None else len(messages)
    if prompt_len == 0:
        raise Unconvertible("no_prompt", "no message precedes the model's first turn")
    messages[:prompt_len] = plain(messages[:prompt_len])  # prompts hash canonically: plain strings
    unanswered = len(set(builder.call_names) - builder.answered)
    if unanswered:
        builder.fact("unanswered_calls", unanswered)
    truncated = is_truncated(response)
    if truncated:
        builder.fact("truncated")
    turns = calls = 0
    for msg in messages[prompt_len:]:
        if msg["role"] == "assistant":
            turns += 1
            calls += "tool_calls" in msg
    tools = chat_tools(params.tools)
    uses_tools, hidden = calls > 0, tuple(builder.hidden_at)
    return Conversation(
        messages, tools, prompt_len, builder.facts, truncated, n_items, turns, uses_tools, hidden
    )
