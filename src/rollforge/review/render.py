"""A rollout as what the conversation page shows: plain Python values, every string still untrusted.

Nothing here builds HTML: the template escapes every value. Long texts are cut to a preview with the
address of the full text (``full_text`` serves it as text/plain), so a 1 MB tool output costs the page
a few kilobytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from rollforge.rollout import Rollout

PREVIEW_CHARS = 1500
PREVIEW_LINES = 30
FIELD_PREVIEW_CHARS = 4000
SYSTEM_OPEN_CHARS = 600  # longer system prompts start collapsed: they repeat across a task's rollouts
PRETTY_MAX = 2_000_000  # characters: larger JSON texts are shown as they are
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


@dataclass(slots=True)
class MessageView:
    index: int
    role: str
    kind: str  # CSS class: system | user | env-user | assistant | tool | other
    title: str
    generated: bool
    parts: list[Part] = field(default_factory=list)
    reasoning: Text | None = None
    calls: list[Call] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None
    summary: str | None = None  # a long system prompt starts collapsed behind this line


@dataclass(slots=True)
class FieldView:
    key: str
    value: Text


@dataclass(slots=True)
class RolloutView:
    messages: list[MessageView]
    fields: list[FieldView]
    tools: list[FieldView]
    prompt_len: int
    counts: dict[str, int]


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


def pretty_json(text: str) -> tuple[str, bool]:
    """(indented JSON, True) when ``text`` is a JSON document; (text, False) otherwise."""
    if len(text) > PRETTY_MAX:
        return text, False
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text, False
    return json.dumps(value, indent=2, ensure_ascii=False), True


def _pretty_output(text: str) -> str:
    """Tool outputs that are JSON objects or arrays are easier to read indented; others stay as they are."""
    if text.lstrip()[:1] in ("{", "["):
        return pretty_json(text)[0]
    return text


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _parts(msg: dict[str, Any], i: int) -> list[Part]:
    content = msg.get("content")
    role = msg.get("role")
    if not isinstance(content, list):
        text = _as_text(content)
        if not text:
            return []
        text = _pretty_output(text) if role == "tool" else text
        return [Part(text=preview(text, f"m{i}.c"))]
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
    return parts


def _part_text(part: Any) -> str:
    """A text part's text; any other part as JSON."""
    return _as_text(part.get("text") if isinstance(part, dict) and "text" in part else part)


def _calls(msg: dict[str, Any], i: int) -> list[Call]:
    calls = []
    for k, call in enumerate(msg.get("tool_calls") or []):
        function = call.get("function") or {}
        args, valid = pretty_json(_as_text(function.get("arguments", "")))
        calls.append(
            Call(_as_text(function.get("name")), _as_text(call.get("id")), preview(args, f"m{i}.a{k}"), valid)
        )
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
    view = MessageView(i, role, kind, title, generated, parts=_parts(msg, i), calls=_calls(msg, i))
    reasoning = msg.get("reasoning_content")
    if reasoning:
        view.reasoning = preview(_as_text(reasoning), f"m{i}.r")
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


def rollout_view(r: Rollout) -> RolloutView:
    messages = [message_view(m, i, r.prompt_len) for i, m in enumerate(r.messages)]
    fields = [
        FieldView(str(key), preview(_field_text(value), f"f{n}", FIELD_PREVIEW_CHARS, 200))
        for n, (key, value) in enumerate(sorted(r.fields.items(), key=lambda kv: str(kv[0])))
    ]
    tools = [
        FieldView(_tool_name(tool), preview(_field_text(tool), f"t{n}", FIELD_PREVIEW_CHARS, 200))
        for n, tool in enumerate(r.tools)
    ]
    counts = {
        "messages": len(messages),
        "tool calls": sum(len(m.calls) for m in messages),
        "assistant turns": r.assistant_turns,
    }
    return RolloutView(messages, fields, tools, r.prompt_len, counts)


def _tool_name(tool: dict[str, Any]) -> str:
    """Flat (Responses) or nested (chat completions) tool schemas."""
    function = tool["function"] if isinstance(tool.get("function"), dict) else tool
    return _as_text(function.get("name", "?"))


_KEY = re.compile(r"m(\d+)\.(c|r|a\d+|p\d+)|([ft])(\d+)")


def full_text(r: Rollout, key: str) -> str | None:
    """The whole text a preview ``key`` was cut from (m3.c, m3.p1, m3.r, m3.a0, f2, t0); None if unknown."""
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    if match.group(3):
        n = int(match.group(4))
        values = (
            [v for _, v in sorted(r.fields.items(), key=lambda kv: str(kv[0]))]
            if match.group(3) == "f"
            else r.tools
        )
        return _field_text(values[n]) if n < len(values) else None
    i, what = int(match.group(1)), match.group(2)
    if i >= len(r.messages):
        return None
    msg = r.messages[i]
    content = msg.get("content")
    if what == "r":
        return _as_text(msg.get("reasoning_content"))
    if what == "c" and not isinstance(content, list):
        text = _as_text(content)
        return _pretty_output(text) if msg.get("role") == "tool" else text
    k = int(what[1:] or 0)
    if what[0] == "a":
        calls = msg.get("tool_calls") or []
        return (
            pretty_json(_as_text((calls[k].get("function") or {}).get("arguments", "")))[0]
            if k < len(calls)
            else None
        )
    if what[0] == "p" and isinstance(content, list) and k < len(content):
        return _part_text(content[k])
    return None
