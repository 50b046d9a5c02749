"""A few SFT rows shown as the model will see them: the text the chat template renders, with the spans that
carry the loss (the assistant's turns, ``assistant_only_loss``) marked.

With a tokenizer whose template has ``{% generation %}`` markers, the marked spans are exactly the tokens of
``apply_chat_template(..., return_assistant_tokens_mask=True)``, the mask TRL trains with. A template without
markers is rendered whole and the assistant spans found by rendering each prefix of the conversation; with
no tokenizer the messages are shown plainly, role by role, and the label says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollforge.report.rows import message_text, parse_tools

SAMPLE_ROWS = 3
MAX_SEGMENT_CHARS = 1200  # a long tool output or reasoning is cut in the page, never in the data

Segment = tuple[str, bool]  # (text, carries the loss)


@dataclass
class SampleRows:
    """Up to SAMPLE_ROWS SFT rows, each of another task type where the rows allow, in reading order."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: Mapping[str, Any], split: str) -> None:
        if len(self.rows) >= SAMPLE_ROWS:
            return
        task = str(row.get("task_type") or "unknown")
        if any(kept["task_type"] == task for kept in self.rows):
            return
        self.rows.append({"task_type": task, "split": split, "messages": list(row.get("messages") or []),
                          "tools": row.get("tools")})  # fmt: skip

    def merge(self, other: SampleRows) -> None:
        for row in other.rows:
            self.add(row, row["split"])


def render_samples(samples: SampleRows, tokenizer: Any | None) -> tuple[str, list[dict[str, Any]]]:
    """(how they were rendered, each sample with its segments)."""
    out, how = [], "plain messages (no tokenizer given: the trainer's chat template adds its own markers)"
    for row in samples.rows:
        segments, how_row = _render(row["messages"], parse_tools(row["tools"]), tokenizer)
        how = how_row or how
        out.append(
            {"task_type": row["task_type"], "split": row["split"], "segments": [_cut(s) for s in segments]}
        )
    return how, out


def _render(
    messages: list[dict[str, Any]], tools: list[Any], tokenizer: Any | None
) -> tuple[list[Segment], str]:
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        try:
            if "generation" in tokenizer.chat_template:
                return _masked(
                    tokenizer, messages, tools
                ), "the chat template, loss mask from its generation markers"
            return _by_prefix(
                tokenizer, messages, tools
            ), "the chat template, assistant spans found by prefix"
        except Exception:  # a template that refuses the row: shown plainly, as the count falls back too
            pass
    return _plain(messages), ""


def _masked(tokenizer: Any, messages: list[dict[str, Any]], tools: list[Any]) -> list[Segment]:
    encoded = tokenizer.apply_chat_template(
        messages, tools=tools or None, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    segments: list[Segment] = []
    start = 0
    for end in range(1, len(ids) + 1):
        if end == len(ids) or mask[end] != mask[start]:
            segments.append((tokenizer.decode(ids[start:end]), bool(mask[start])))
            start = end
    return segments


def _by_prefix(tokenizer: Any, messages: list[dict[str, Any]], tools: list[Any]) -> list[Segment]:
    def render(upto: int, prompt: bool = False) -> str:
        text: str = tokenizer.apply_chat_template(
            messages[:upto], tools=tools or None, tokenize=False, add_generation_prompt=prompt
        )
        return text

    full, segments, at = render(len(messages)), [], 0
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        start, end = len(render(i, prompt=True)), len(render(i + 1))
        if not (at <= start <= end <= len(full)):
            raise ValueError("the template does not render prefixes as prefixes")
        segments += [(full[at:start], False), (full[start:end], True)]
        at = end
    return [*segments, (full[at:], False)]


def _plain(messages: list[dict[str, Any]]) -> list[Segment]:
    segments: list[Segment] = []
    for message in messages:
        role = message.get("role", "?")
        segments.append((f"\n[{role}]\n", False))
        reasoning = message.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            segments.append((f"(reasoning) {reasoning}\n", role == "assistant"))
        segments.append((message_text(message), role == "assistant"))
    return [s for s in segments if s[0]]


def _cut(segment: Segment) -> Segment:
    text, loss = segment
    if len(text) <= MAX_SEGMENT_CHARS:
        return segment
    return text[:MAX_SEGMENT_CHARS] + f" … ({len(text) - MAX_SEGMENT_CHARS:,} characters more)", loss
