"""Inline reasoning in assistant text: ``<think>...</think>``, a lone ``</think>`` (the chat template opened
the tag), or an unclosed ``<think>`` (generation stopped while reasoning)."""

from __future__ import annotations

import re

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def split_think(text: str) -> tuple[str | None, str, str | None]:
    """(reasoning or None, answer, shape fact or None)."""
    if "<think>" in text:
        found = _THINK.findall(text)
        rest = _THINK.sub("", text)
        shape = "think_inline"
        if "<think>" in rest:
            before, _, after = rest.partition("<think>")
            found.append(after)
            rest, shape = before, "think_unclosed"
        return "\n\n".join(t.strip("\n") for t in found), rest.lstrip(), shape
    if "</think>" in text:
        before, _, after = text.partition("</think>")
        return before.strip("\n"), after.lstrip(), "think_lone_close"
    return None, text, None
