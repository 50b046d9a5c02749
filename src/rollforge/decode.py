"""One line of bytes -> :class:`Rollout` or :class:`Reject`, never an exception.

The line is decoded against the typed schema in ``rollforge.schema`` (only the fields in use, text kept
raw), then converted. A line the schema refuses is rejected with the reason its error points at; a line
with Python's NaN/Infinity literals is re-encoded by the standard library and decoded again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from rollforge.convert import Conversation, convert, invalid_arguments
from rollforge.head import head_of
from rollforge.identity import prompt_id, rollout_id
from rollforge.limits import MAX_DEPTH, out_of_range, too_deep
from rollforge.rewards import reward_of
from rollforge.rollout import Head, Reject, Rollout, Unconvertible
from rollforge.schema import CORE_FIELDS, line_type, plain

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
Restore = Callable[[Any, Any], "dict[str, Any] | None"]


class LineDecoder:
    """Decodes lines with a schema made for the fields in use.

    ``all_fields`` keeps every top-level field in ``Rollout.fields`` (slower: for viewers, not pipelines).
    ``lazy_text`` leaves generated text as ``msgspec.Raw`` (pipelines copy it to the output undecoded);
    otherwise messages hold plain strings. ``arguments="object"`` rejects tool calls whose arguments are
    not a JSON object, since they cannot be rendered as one.
    """

    def __init__(
        self,
        extra_fields: Iterable[str] = (),
        all_fields: bool = False,
        arguments: str = "object",
        lazy_text: bool = False,
    ) -> None:
        self.all_fields = all_fields
        self.arguments = arguments
        self.lazy_text = lazy_text
        self.field_names = tuple(dict.fromkeys((*DEFAULT_FIELDS, *extra_fields)))
        self._line_fields = tuple(n for n in self.field_names if n not in CORE_FIELDS)  # as Rollout.fields
        self.type = line_type(self.field_names)
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self.type)
        companion = msgspec.defstruct("PlannedRow", [(n, Any, msgspec.UNSET) for n in self.field_names])
        self._companion: msgspec.json.Decoder[Any] = msgspec.json.Decoder(companion)

    def companion_fields(self, line: bytes) -> dict[str, Any] | None:
        """The fields this decoder keeps (every field with ``all_fields``) of a companion file's row; None
        if the row is not a JSON object."""
        if self.all_fields:
            return object_fields(line)
        try:
            row = self._companion.decode(line)
        except msgspec.MsgspecError:
            return None
        return {n: v for n in self.field_names if (v := getattr(row, n)) is not msgspec.UNSET}

    def parse_head(
        self, line: bytes, file: str, line_no: int, restore: Restore | None = None
    ) -> Head | Reject:
        """The cheap look (see rollforge.head); a line it cannot judge, or rejects, is parsed in full for the
        verdict (a line can break several rules: the reason reported is the one the full parse names)."""
        unusable = _unusable(line, file, line_no)
        if unusable is not None:
            return unusable
        try:
            obj = self._decoder.decode(line)
        except (msgspec.MsgspecError, RecursionError):
            parsed = self.parse(line, file, line_no, restore)  # precise reject, or a NaN-literal line
            return parsed if isinstance(parsed, Reject) else _as_head(parsed, line)
        if restore is not None:  # restored fields go on the struct, so Head.fields sees them
            for key, value in (restore(obj._ng_task_index, obj._ng_rollout_index) or {}).items():
                if key in self._line_fields and getattr(obj, key) is msgspec.UNSET:
                    setattr(obj, key, value)
        head: Head | Reject | None
        try:
            head = head_of(obj, self._line_fields, line, file, line_no, self.arguments)
        except (Unconvertible, msgspec.ValidationError, RecursionError):  # a number out of range: parse says
            head = None
        if not isinstance(head, Head):  # rare, so the full parse costs little
            parsed = self.parse(line, file, line_no, restore)
            return parsed if isinstance(parsed, Reject) else _as_head(parsed, line)
        return head

    def parse_rest(self, head: Head, restore: Restore | None = None) -> Rollout | Reject:
        """What :meth:`parse` gives for the line of ``head``, converting the struct the head was read from
        (its restored fields already on it) rather than decoding the line again."""
        obj, line = head.decoded, head.raw_line
        if obj is None or self.all_fields:  # a head made from a full parse, or fields read from the line
            return self.parse(line, head.file, head.line, restore)
        return self._to_rollout(obj, self._fields(obj, line), line, head.file, head.line)

    def parse(self, line: bytes, file: str, line_no: int, restore: Restore | None = None) -> Rollout | Reject:
        """Decode and convert one line. ``restore(task_index, rollout_index)`` returns materialized-input
        fields to fill in where the rollout lacks them."""
        unusable = _unusable(line, file, line_no)
        if unusable is not None:
            return unusable
        try:
            obj = self._decoder.decode(line)
        except RecursionError:  # not reached below MAX_DEPTH; kept so that no line can stop a run
            return Reject(file, line_no, "too_deep", "nested too deeply to decode")
        except msgspec.ValidationError as exc:
            return Reject(file, line_no, _reason_for(str(exc)), f"{exc}")
        except msgspec.DecodeError as exc:
            obj = self._python_literals(line)
            if obj is None:
                return Reject(file, line_no, "invalid_json", json_error(line, str(exc)))
            if isinstance(obj, Reject):
                return Reject(file, line_no, obj.reason, obj.message)
        fields = self._fields(obj, line)
        if restore is not None:
            for key, value in (restore(obj._ng_task_index, obj._ng_rollout_index) or {}).items():
                if (
                    key not in fields
                    and key not in CORE_FIELDS
                    and (self.all_fields or key in self.field_names)
                ):
                    fields[key] = value
        return self._to_rollout(obj, fields, line, file, line_no)

    def _python_literals(self, line: bytes) -> Any:
        """Python writers emit NaN/Infinity; the standard library reads them. None if still not JSON."""
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            return None
        if not isinstance(value, dict):
            return Reject("", 0, "not_an_object", f"a JSON {type(value).__name__}, not an object")
        try:  # msgspec writes NaN as null: decode the rest, then put the reward back as it was
            obj: Any = msgspec.json.decode(msgspec.json.encode(value), type=self.type)
        except msgspec.ValidationError as exc:
            return Reject("", 0, _reason_for(str(exc)), str(exc))
        except UnicodeEncodeError:  # a lone surrogate escape ("\ud800"): not text UTF-8 can hold
            return None
        obj.reward = value.get("reward", msgspec.UNSET)
        return obj

    def _fields(self, obj: Any, line: bytes) -> dict[str, Any]:
        if self.all_fields:
            everything = json.loads(line) if not isinstance(line, str) else {}
            return {k: v for k, v in everything.items() if k not in CORE_FIELDS}
        return {
            name: value
            for name in self.field_names
            if (value := getattr(obj, name, msgspec.UNSET)) is not msgspec.UNSET and name not in CORE_FIELDS
        }

    def conversion_reject(self, head: Head) -> Reject | None:
        """The Reject the full conversion gives the line of ``head``, if any. A head a filter drops is checked
        with this first: a line conversion rejects is rejected whatever the filters, in every command."""
        if head.decoded is None:  # made from a full parse, which converted it
            return None
        converted = self._convert(head.decoded, head.file, head.line)
        return converted if isinstance(converted, Reject) else None

    def _convert(self, obj: Any, file: str, line_no: int) -> tuple[Conversation, float] | Reject:
        """The conversation and reward of a decoded line, or why it is rejected."""
        try:
            conv = convert(obj.responses_create_params, obj.response)
        except Unconvertible as exc:
            return Reject(file, line_no, exc.reason, exc.message)
        except RecursionError:
            return Reject(file, line_no, "too_deep", "nested too deeply to convert")
        except msgspec.ValidationError as exc:  # tools or arguments, decoded during conversion
            reason = "number_out_of_range" if out_of_range(exc) else "malformed_item"
            return Reject(file, line_no, reason, f"{exc}")
        reward, problem = reward_of(obj.reward)
        if problem is not None:
            return Reject(file, line_no, problem, f"reward is {obj.reward!r}")
        if self.arguments == "object" and conv.facts.get("invalid_arguments"):
            error = invalid_arguments()
            return Reject(file, line_no, error.reason, error.message)
        return conv, reward

    def _to_rollout(
        self, obj: Any, fields: dict[str, Any], line: bytes, file: str, line_no: int
    ) -> Rollout | Reject:
        converted = self._convert(obj, file, line_no)
        if isinstance(converted, Reject):
            return converted
        conv, reward = converted
        messages = conv.messages if self.lazy_text else plain(conv.messages)
        return Rollout(
            file=file,
            line=line_no,
            rollout_id=rollout_id(line),
            prompt_id=prompt_id(conv.messages[: conv.prompt_len], conv.tools),
            reward=reward,
            messages=messages,
            tools=conv.tools,
            prompt_len=conv.prompt_len,
            truncated=conv.truncated,
            n_items=conv.n_items,
            facts=conv.facts,
            fields=fields,
            assistant_turns=conv.assistant_turns,
            uses_tools=conv.uses_tools,
            task_index=_int_or_none(obj._ng_task_index),
            rollout_index=_int_or_none(obj._ng_rollout_index),
            hidden_reasoning=conv.hidden_reasoning,
        )


_AT_BYTE = re.compile(r"^(?:JSON is malformed: )?(.*?) \(byte (\d+)\)$")


def json_error(line: bytes, error: str) -> str:
    """msgspec's error ("invalid character (byte 0)") as a reader needs it: what was found, at which
    column (in characters, 1-based), and the text around it."""
    line = line.rstrip(b"\r\n")
    match = _AT_BYTE.match(error)
    if match is None:
        if "truncated" in error:
            return f"not valid JSON: the line ends inside a value after {len(line)} bytes (cut short?)"
        return f"not valid JSON: {error}"
    what, at = match.group(1), int(match.group(2))
    before = line[:at].decode("utf-8", "replace")
    rest = line[at:].decode("utf-8", "replace")
    found = repr(rest[0]) if rest else "the end of the line"
    near = ("..." if len(before) > 20 else "") + before[-20:] + rest[:20] + ("..." if len(rest) > 20 else "")
    return f"not valid JSON at column {len(before) + 1}: {what}, found {found} in {near!r}"


def object_fields(line: bytes) -> dict[str, Any] | None:
    """Every field of a JSON object line; None if the line is not one."""
    try:
        value = msgspec.json.decode(line)
    except msgspec.MsgspecError:
        return None
    return value if isinstance(value, dict) else None


def _unusable(line: bytes, file: str, line_no: int) -> Reject | None:
    """What is wrong with a line before any decoding: bytes that are not UTF-8, or nesting past MAX_DEPTH."""
    if bad_utf8(line):
        return Reject(file, line_no, "invalid_json", "not valid UTF-8")
    if isinstance(line, bytes) and too_deep(line):
        return Reject(
            file, line_no, "too_deep", f"arrays or objects nested more than {MAX_DEPTH} levels deep"
        )
    return None


def bad_utf8(line: bytes) -> bool:
    """msgspec does not check the text it keeps raw: invalid UTF-8 would raise later, or reach the output.
    Most lines are ASCII (a fast check); the others are decoded once."""
    if not isinstance(line, bytes) or line.isascii():
        return False
    try:
        line.decode()
    except UnicodeDecodeError:
        return True
    return False


def _reason_for(error: str) -> str:
    """The reject reason a schema error points at (msgspec names the JSON path: `$.response.output[3]`)."""
    if " - at `" not in error:
        return "not_an_object"
    path = error.rsplit(" - at `", 1)[1].rstrip("`")
    if path in ("$.responses_create_params", "$.responses_create_params.input"):
        return "no_prompt"
    if path == "$.response":
        return "no_response"
    if path == "$.response.output":
        return "no_output"
    if path == "$.reward":  # a number out of range (1e400)
        return "bad_reward"
    if out_of_range(error):
        return "number_out_of_range"
    return "malformed_item"


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_head(r: Rollout, line: bytes) -> Head:
    turns = (r.assistant_turns, r.assistant_turns)
    head = Head(r.file, r.line, line, None, (), r.reward, r.n_items, r.truncated, r.uses_tools, turns)
    head._fields = r.fields
    return head
