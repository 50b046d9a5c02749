"""The typed view of a rollout line that msgspec decodes straight from bytes.

Only what conversion needs is declared; everything else on the line (token ids, log probs, judge
transcripts, ids, statuses) is skipped by the decoder without building Python objects. Text fields are
``msgspec.Raw``: the JSON-encoded bytes, copied to the output as they are and decoded only where a rule
needs the characters (an inline ``<think>``, several parts joined). That is what makes rollforge fast.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import msgspec

Raw = msgspec.Raw
NULL = Raw(b"null")
EMPTY = Raw(b'""')


class Part(msgspec.Struct):
    """A content part (input_text, output_text, refusal, input_image, summary_text, reasoning_text)."""

    type: Optional[str] = None  # noqa: UP045 (msgspec resolves these annotations at runtime)
    text: Raw = NULL
    refusal: Raw = NULL
    image_url: Any = None
    file_id: Any = None
    detail: Any = None


class Item(msgspec.Struct):
    """One Responses item: message, reasoning, function_call or function_call_output."""

    type: Optional[str] = None  # noqa: UP045
    role: Optional[str] = None  # noqa: UP045
    content: Raw = NULL  # str or parts (messages); reasoning_text parts (reasoning)
    name: Optional[str] = None  # noqa: UP045
    call_id: Optional[str] = None  # noqa: UP045
    arguments: Raw = NULL
    output: Raw = NULL
    summary: Optional[list[Part]] = None  # noqa: UP045
    encrypted_content: Raw = NULL


class Response(msgspec.Struct):
    output: Optional[list[Union[Item, list[Item]]]] = None  # noqa: UP007, UP045
    incomplete_details: Any = None
    status: Any = None


class Params(msgspec.Struct):
    input: Union[str, list[Item], None] = None  # noqa: UP007
    tools: Raw = NULL
    instructions: Any = None


CORE_FIELDS = ("responses_create_params", "response", "reward", "_ng_task_index", "_ng_rollout_index")


def line_type(extra_fields: tuple[str, ...]) -> type:
    """A struct type for a line: the core fields plus ``extra_fields`` (top-level, kept undecoded-free)."""
    fields: list[tuple[str, Any, Any]] = [
        ("responses_create_params", Optional[Params], msgspec.UNSET),  # noqa: UP045
        ("response", Optional[Response], msgspec.UNSET),  # noqa: UP045
        ("reward", Any, msgspec.UNSET),
        ("_ng_task_index", Any, None),
        ("_ng_rollout_index", Any, None),
    ]
    fields += [(name, Any, msgspec.UNSET) for name in extra_fields if name not in CORE_FIELDS]
    return msgspec.defstruct("RolloutLine", fields)


def plain(value: Any) -> Any:
    """Decode every Raw inside a value: messages with plain strings, for code that reads the text."""
    if isinstance(value, Raw):
        return msgspec.json.decode(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def text(value: Any) -> str:
    """The text of a content value (a Raw JSON string or a str); parts lists give their text joined."""
    value = plain(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p.get("text", "") for p in value if isinstance(p, dict))
    return "" if value is None else str(value)
