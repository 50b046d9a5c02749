"""Real token counts: the length of a conversation rendered through a tokenizer's chat template."""

from __future__ import annotations

from typing import Any

from rollforge.errors import RollforgeError, missing_extra
from rollforge.export.messages import style
from rollforge.schema import plain


def load_tokenizer(name_or_path: str | None) -> Any:
    if not name_or_path:
        raise RollforgeError(
            "--max-tokens needs --tokenizer", hint="pass a local tokenizer directory or hub id"
        )
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise missing_extra("transformers", "train") from None
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        raise RollforgeError(f"cannot load tokenizer {name_or_path!r}: {exc}".splitlines()[0]) from None


def render_length(tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    """Tokens of the full conversation as the chat template renders it (tools included). Texts the fast reader
    keeps as raw JSON are decoded first: a template renders a value that is not a string as nothing."""
    ids = tokenizer.apply_chat_template(plain(style(messages)), tools=plain(tools) or None, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers 5 may return a BatchEncoding
        ids = ids["input_ids"]
    return len(ids)
