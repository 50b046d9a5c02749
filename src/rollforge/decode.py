"""One line of bytes -> :class:`Rollout` or :class:`Reject`, never an exception.

Speed comes from decoding only what rollforge uses: msgspec decodes the line against a schema of the
fields conversion needs (plus any top-level fields a filter names) and skips the rest (token ids, log
probs, judge transcripts, ids, statuses) without building Python objects for them. Lines the fast schema
cannot take (NaN literals, odd types) fall back to a generic decode, so the converter always sees the
same dicts and the reject reasons stay precise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from typing import Any, TypedDict, Union

import msgspec

from rollforge.convert import Unconvertible, convert
from rollforge.identity import prompt_id, rollout_id
from rollforge.rollout import Reject, Rollout

# Top-level fields every Rollout carries in .fields (task type sources and common verifier outputs).
DEFAULT_FIELDS = (
    "metadata",
    "task_type",
    "task_name",
    "domain_name",
    "agent_ref",
    "task_id",
    "id",
    "expected_answer",
    "is_correct",
    "success",
)
CORE_FIELDS = ("responses_create_params", "response", "reward", "_ng_task_index", "_ng_rollout_index")


class _Item(TypedDict, total=False):
    type: Any
    role: Any
    content: Any
    name: Any
    call_id: Any
    arguments: Any
    output: Any
    summary: Any
    encrypted_content: Any
    image_url: Any


class _Response(TypedDict, total=False):
    output: list[Union[_Item, list[_Item]]]  # noqa: UP007 (msgspec needs typing.Union here)
    incomplete_details: Any
    status: Any


class _Params(TypedDict, total=False):
    input: Any
    tools: Any
    instructions: Any


def _schema(extra: Iterable[str]) -> Any:
    fields: dict[str, Any] = {
        "responses_create_params": _Params,
        "response": _Response,
        "reward": Any,
        "_ng_task_index": Any,
        "_ng_rollout_index": Any,
    }
    for name in extra:
        fields.setdefault(name, Any)
    return TypedDict("RolloutLine", fields, total=False)  # type: ignore[operator]


class LineDecoder:
    """Decodes lines with a schema made for the fields in use. ``all_fields`` keeps every top-level field."""

    def __init__(self, extra_fields: Iterable[str] = (), all_fields: bool = False, arguments: str = "object"):
        self.all_fields = all_fields
        self.arguments = arguments
        self.field_names = tuple(dict.fromkeys((*DEFAULT_FIELDS, *extra_fields)))
        self._fast = msgspec.json.Decoder() if all_fields else msgspec.json.Decoder(_schema(self.field_names))
        self._generic = msgspec.json.Decoder()

    def decode(self, line: bytes) -> tuple[Any, str | None]:
        """(object, None) or (None, error message)."""
        try:
            return self._fast.decode(line), None
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError as exc:
            try:  # stdlib json accepts NaN/Infinity literals that Python writers emit
                return json.loads(line), None
            except (ValueError, RecursionError):
                return None, str(exc)
        try:
            return self._generic.decode(line), None
        except msgspec.DecodeError as exc:
            return None, str(exc)

    def parse(
        self,
        line: bytes,
        file: str,
        line_no: int,
        restore: Callable[[Any, Any], dict[str, Any] | None] | None = None,
    ) -> Rollout | Reject:
        """Decode and convert one line. ``restore(task_index, rollout_index)`` returns materialized-input
        fields to fill in where the rollout lacks them."""
        obj, error = self.decode(line)
        if error is not None:
            return Reject(file, line_no, "invalid_json", f"not valid JSON: {error}")
        if not isinstance(obj, dict):
            return Reject(file, line_no, "not_an_object", f"a JSON {type(obj).__name__}, not an object")
        if restore is not None:
            extra = restore(obj.get("_ng_task_index"), obj.get("_ng_rollout_index"))
            for key, value in (extra or {}).items():
                if key not in obj and (self.all_fields or key in self.field_names):
                    obj[key] = value
        return self._to_rollout(obj, line, file, line_no)

    def _to_rollout(self, obj: dict[str, Any], line: bytes, file: str, line_no: int) -> Rollout | Reject:
        try:
            conv = convert(obj)
        except Unconvertible as exc:
            return Reject(file, line_no, exc.reason, exc.message)
        except RecursionError:
            return Reject(file, line_no, "malformed_item", "items nested too deeply")
        reward, problem = _reward(obj)
        if problem is not None:
            return Reject(file, line_no, problem, f"reward is {obj.get('reward')!r}")
        if self.arguments == "object" and conv.facts.get("invalid_arguments"):
            return Reject(file, line_no, "invalid_tool_arguments", "a tool call's arguments are not a JSON object")
        fields = {k: v for k, v in obj.items() if k not in CORE_FIELDS}
        return Rollout(
            file=file,
            line=line_no,
            rollout_id=rollout_id(line),
            prompt_id=prompt_id(conv.messages[: conv.prompt_len], conv.tools),
            reward=reward,
            messages=conv.messages,
            tools=conv.tools,
            prompt_len=conv.prompt_len,
            truncated=conv.truncated,
            n_items=conv.n_items,
            facts=conv.facts,
            fields=fields,
            task_index=_int_or_none(obj.get("_ng_task_index")),
            rollout_index=_int_or_none(obj.get("_ng_rollout_index")),
        )


def _reward(obj: dict[str, Any]) -> tuple[float, str | None]:
    value = obj.get("reward")
    if value is None:
        return 0.0, "no_reward"
    if isinstance(value, bool):
        return float(value), None
    if not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0, "bad_reward"
    return float(value), None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
