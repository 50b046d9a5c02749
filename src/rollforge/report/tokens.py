"""Counting tokens per conversation: a real tokenizer's chat template when given one, else a labelled estimate.

The estimate is ceil(characters / 4) over the text of the messages and the tools JSON (see
:func:`rollforge.report.rows.conversation_chars`); it ignores the template's own tokens, so it reads low.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import orjson

from rollforge.errors import RollforgeError, missing_extra
from rollforge.report.rows import Message, conversation_chars, message_text, parse_tools

ESTIMATE_LABEL = "estimated tokens (chars/4, no tokenizer given)"
CHARS_PER_TOKEN = 4


class TokenCounter(Protocol):
    method: str  # "estimate" | "chat_template" | "plain_text"
    label: str  # how the report names the numbers
    template_errors: int  # conversations the chat template refused (counted as plain text instead)

    def count(self, messages: list[Message], tools: Any) -> int: ...


def estimate_tokens(messages: list[Message], tools: Any) -> int:
    return -(-conversation_chars(messages, tools) // CHARS_PER_TOKEN)


class CharEstimate:
    method = "estimate"
    label = ESTIMATE_LABEL
    template_errors = 0

    def count(self, messages: list[Message], tools: Any) -> int:
        return estimate_tokens(messages, tools)


class TokenizerCounter:
    """Tokens of ``apply_chat_template(messages, tools=...)``; the plain text of the messages and tools
    (newline-joined) when the tokenizer has no chat template, and the label says so."""

    def __init__(self, path: str) -> None:
        if not os.path.isdir(path):
            raise RollforgeError(
                f"no tokenizer directory at {path}", hint="pass a local directory holding tokenizer files"
            )
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise missing_extra("transformers", "train") from exc
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise RollforgeError(f"cannot load a tokenizer from {path}: {exc}") from exc
        name = os.path.basename(os.path.normpath(path))
        if getattr(self.tokenizer, "chat_template", None):
            self.method = "chat_template"
            self.label = f"tokens ({name} chat template)"
        else:
            self.method = "plain_text"
            self.label = f"tokens ({name} has no chat template: message text encoded without one)"
        self.template_errors = 0

    def count(self, messages: list[Message], tools: Any) -> int:
        if self.method == "chat_template":
            try:
                ids = self.tokenizer.apply_chat_template(
                    messages, tools=parse_tools(tools) or None, tokenize=True, return_dict=False
                )
                return len(ids)
            except Exception:  # a template may refuse a row (role order, missing keys): count it, go on
                self.template_errors += 1
        parts = [message_text(m) for m in messages]
        if parse_tools(tools):  # the schemas are prompt text too, as the estimate counts them
            parts.append(tools if isinstance(tools, str) else orjson.dumps(tools).decode())
        return len(self.tokenizer.encode("\n".join(parts), add_special_tokens=False))


def token_counter(tokenizer: str | None) -> TokenCounter:
    """The counter for a tokenizer directory, or the estimate when none is given (transformers not imported)."""
    return TokenizerCounter(tokenizer) if tokenizer else CharEstimate()
