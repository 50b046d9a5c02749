"""A conversation as the review pages show it: plain Python values, every string still untrusted.

Nothing here builds HTML: the template escapes every value. Long texts are cut to a preview with the
address of the full text (``full_text`` serves it as text/plain), so a 1 MB tool output costs the page
a few kilobytes. Tool outputs and arguments that are JSON are shown indented, and a JSON string literal
(text encoded twice) decoded; reasoning the model did but did not return (hidden or encrypted) is marked
where it happened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rollforge.rollout import Rollout
from rollforge.thinking import split_think

PREVIEW_CHARS = 1500
PREVIEW_LINES = 30
FIELD_PREVIEW_CHARS = 4000
SYSTEM_OPEN_CHARS = 600  # longer system prompts start collapsed: they repeat across a task's rollouts
PRETTY_MAX = 2_000_000  # characters: larger JSON texts are shown as they are
DECODE_LAYERS = 3  # JSON string literals undone at most this many times (text encoded twice, thrice)
# Images shown inline: only data URLs of raster types (no network fetch, no SVG); the rest as text.
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+")


@dataclass(slots=True)
class Text:
    """A text block: its preview and, when cut, where the rest is."""

    preview: str
    size: int  # characters of the full text
    key: str | None = None  # full-text key when the preview is cut

    @property
    def cut(self) -> bool:
        return self.key is not None


@dataclass(slots=True)
class Part:
    text: Text | None = None
    image: str | None = None  # a data URL safe to show
    note: str | None = None  # what stands in for an image that is not shown


@dataclass(slots=True)
class Call:
    name: str
    call_id: str
    arguments: Text
    valid_json: bool
    how: str | None = None  # how the arguments were made readable (see Readable)


@dataclass(slots=True)
class MessageView:
    index: int
    role: str
    kind: str  # CSS class: system | user | env-user | assistant | tool | other
    title: str
    generated: bool
    parts: list[Part] = field(default_factory=list)
    reasoning: Text | None = None
    inline_think: bool = False  # the reasoning was in <think> tags inside the content
    hidden_reasoning: str | None = None  # "hidden" | "encrypted": this turn reasoned without text shown
    hidden_before: str | None = None  # a turn of hidden reasoning alone came right before this message
    calls: list[Call] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None
    how: str | None = None  # a tool output made readable (see Readable)
    summary: str | None = None  # a long system prompt starts collapsed behind this line


@dataclass(slots=True)
class FieldView:
    key: str
    value: Text


@dataclass(slots=True)
class ConversationView:
    messages: list[MessageView]
    fields: list[FieldView]
    tools: list[FieldView]
    prompt_len: int
    counts: dict[str, int]
    hidden_after: str | None = None  # the last turn was hidden reasoning alone

    @property
    def prompt(self) -> list[MessageView]:
        return self.messages[: self.prompt_len]

    @property
    def completion(self) -> list[MessageView]:
        return self.messages[self.prompt_len :]


def preview(text: str, key: str, limit: int = PREVIEW_CHARS, lines: int = PREVIEW_LINES) -> Text:
    """``text`` cut at ``limit`` characters or ``lines`` lines, whichever comes first."""
    end = min(len(text), limit)
    newline = -1
    for _ in range(lines):
        newline = text.find("\n", newline + 1, end)
        if newline < 0:
            break
    else:
        end = newline
    return Text(text, len(text)) if end >= len(text) else Text(text[:end], len(text), key)


@dataclass(slots=True)
class Readable:
    """A text as a reviewer reads it best, and what was done to it (``how``; None: shown as it is)."""

    text: str
    how: str | None = None  # "JSON, indented" | "JSON string, decoded"


def _json_start(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[", '"')


def readable(text: str) -> Readable:
    """A JSON document indented; a JSON string literal (a tool that answers with a JSON string, text
    encoded twice) decoded, then indented if it holds JSON. Anything else as it is."""
    if len(text) > PRETTY_MAX or not _json_start(text):
        return Readable(text)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return Readable(text)
    for _ in range(DECODE_LAYERS):
        if not (isinstance(value, str) and _json_start(value)):
            break
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            break
    how = "JSON string, decoded" if text.lstrip()[:1] == '"' else "JSON, indented"
    if isinstance(value, str):
        return Readable(value, how)
    try:
        return Readable(json.dumps(value, indent=2, ensure_ascii=False), how)
    except (ValueError, RecursionError):
        return Readable(text)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _reasoning_and_content(msg: dict[str, Any]) -> tuple[str | None, Any, bool]:
    """(reasoning text, content, whether the reasoning was inline ``<think>`` tags). Rollouts hold reasoning
    in ``reasoning_content``; released rows may carry it in the content (``--reasoning think``)."""
    content = msg.get("content")
    reasoning = msg.get("reasoning_content")
    if reasoning:
        return _as_text(reasoning), content, False
    if msg.get("role") == "assistant" and isinstance(content, str) and "<think>" in content:
        thought, answer, _ = split_think(content)
        return thought, answer, True
    return None, content, False


def _parts(msg: dict[str, Any], content: Any, i: int) -> tuple[list[Part], str | None]:
    """The content's parts, and how a tool output was made readable."""
    if not isinstance(content, list):
        text = _as_text(content)
        if not text:
            return [], None
        shown = readable(text) if msg.get("role") == "tool" else Readable(text)
        return [Part(text=preview(shown.text, f"m{i}.c"))], shown.how
    parts = []
    for k, part in enumerate(content):
        if isinstance(part, dict) and part.get("type") == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            if _DATA_IMAGE.fullmatch(url):
                parts.append(Part(image=url))
            else:  # never fetched: the page makes no request outside this server
                parts.append(Part(note=f"image not shown: {url[:200]}"))
        else:
            parts.append(Part(text=preview(_part_text(part), f"m{i}.p{k}")))
    return parts, None


def _part_text(part: Any) -> str:
    """A text part's text; any other part as JSON."""
    return _as_text(part.get("text") if isinstance(part, dict) and "text" in part else part)


def _arguments(call: Any) -> Readable:
    function = (call.get("function") if isinstance(call, dict) else None) or {}
    return readable(_as_text(function.get("arguments", "")))


def _calls(msg: dict[str, Any], i: int) -> list[Call]:
    calls = []
    for k, call in enumerate(msg.get("tool_calls") or []):
        function = (call.get("function") if isinstance(call, dict) else None) or {}
        args = _arguments(call)
        name, call_id = _as_text(function.get("name")), _as_text(call.get("id"))
        calls.append(Call(name, call_id, preview(args.text, f"m{i}.a{k}"), args.how is not None, args.how))
    return calls


def _kind(role: str, generated: bool) -> tuple[str, str]:
    if role == "user" and generated:
        return "env-user", "user · environment turn"
    if role in ("system", "developer"):
        return "system", role
    if role in ("user", "assistant", "tool"):
        return role, role
    return "other", role or "unknown"


def message_view(msg: dict[str, Any], i: int, prompt_len: int) -> MessageView:
    role = _as_text(msg.get("role"))
    generated = i >= prompt_len
    kind, title = _kind(role, generated)
    reasoning, content, inline = _reasoning_and_content(msg)
    parts, how = _parts(msg, content, i)
    view = MessageView(i, role, kind, title, generated, parts=parts, calls=_calls(msg, i), how=how)
    if reasoning:
        view.reasoning, view.inline_think = preview(reasoning, f"m{i}.r"), inline
    if kind == "system":
        texts = [p.text for p in view.parts if p.text]
        if sum(t.size for t in texts) > SYSTEM_OPEN_CHARS:
            view.summary = texts[0].preview[:140] + "…"
    if role == "tool":
        view.tool_name = _as_text(msg.get("name")) or None
        view.tool_call_id = _as_text(msg.get("tool_call_id")) or None
    return view


def _field_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


def conversation_view(
    messages: list[dict[str, Any]],
    prompt_len: int,
    fields: dict[str, Any],
    tools: list[dict[str, Any]],
    hidden: Iterable[tuple[int, str]] = (),
) -> ConversationView:
    """The page's view of a conversation. ``hidden``: (message index, kind) of reasoning without text (see
    ``rollforge.convert.Conversation.hidden_reasoning``)."""
    views = [message_view(m, i, prompt_len) for i, m in enumerate(messages)]
    hidden_after = None
    for at, kind in hidden:
        if at >= len(views):
            hidden_after = kind
        elif views[at].role == "assistant":  # the turn's own message
            views[at].hidden_reasoning = kind
        else:  # the turn had nothing else: marked before what followed it
            views[at].hidden_before = kind
    field_views = [
        FieldView(str(key), preview(_field_text(value), f"f{n}", FIELD_PREVIEW_CHARS, 200))
        for n, (key, value) in enumerate(sorted(fields.items(), key=lambda kv: str(kv[0])))
    ]
    tool_views = [
        FieldView(_tool_name(tool), preview(_field_text(tool), f"t{n}", FIELD_PREVIEW_CHARS, 200))
        for n, tool in enumerate(tools)
    ]
    counts = {
        "messages": len(views),
        "tool calls": sum(len(m.calls) for m in views[prompt_len:]),
        "assistant turns": sum(m.role == "assistant" for m in views[prompt_len:]),
    }
    return ConversationView(views, field_views, tool_views, prompt_len, counts, hidden_after)


def rollout_view(r: Rollout) -> ConversationView:
    return conversation_view(r.messages, r.prompt_len, r.fields, r.tools, r.hidden_reasoning)


def _tool_name(tool: Any) -> str:
    """Flat (Responses) or nested (chat completions) tool schemas."""
    if not isinstance(tool, dict):
        return "?"
    function = tool["function"] if isinstance(tool.get("function"), dict) else tool
    return _as_text(function.get("name", "?"))


_KEY = re.compile(r"m(\d+)\.(c|r|a\d+|p\d+)|([ft])(\d+)")


def full_text(
    messages: list[dict[str, Any]], fields: dict[str, Any], tools: list[dict[str, Any]], key: str
) -> str | None:
    """The whole text a preview ``key`` was cut from (m3.c, m3.p1, m3.r, m3.a0, f2, t0); None if unknown."""
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    if match.group(3):
        n = int(match.group(4))
        values = (
            [v for _, v in sorted(fields.items(), key=lambda kv: str(kv[0]))]
            if match.group(3) == "f"
            else tools
        )
        return _field_text(values[n]) if n < len(values) else None
    i, what = int(match.group(1)), match.group(2)
    if i >= len(messages):
        return None
    msg = messages[i]
    reasoning, content, _ = _reasoning_and_content(msg)
    if what == "r":
        return reasoning
    if what == "c" and not isinstance(content, list):
        text = _as_text(content)
        return readable(text).text if msg.get("role") == "tool" else text
    k = int(what[1:] or 0)
    if what[0] == "a":
        calls = msg.get("tool_calls") or []
        return _arguments(calls[k]).text if k < len(calls) else None
    if what[0] == "p" and isinstance(content, list) and k < len(content):
        return _part_text(content[k])
    return None
