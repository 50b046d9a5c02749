"""The two records every input line becomes: a :class:`Rollout` or a :class:`Reject` (:class:`Unconvertible`
is how conversion says "reject it"), and :class:`Head`, the cheap first look at a line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from msgspec import UNSET as _UNSET


@dataclass(slots=True)
class Reject:
    """A line that is not a usable rollout: where it is and why (``reason`` is a stable code)."""

    file: str
    line: int
    reason: str
    message: str

    def where(self) -> str:
        return f"{self.file}:{self.line}"


class Unconvertible(Exception):
    """A rollout with no faithful chat form; ``reason`` is one of ``rollforge.reasons.REJECT_REASONS``: the line
    becomes a :class:`Reject`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Look(Protocol):
    """What a filter may read of a rollout on the cheap first look: a :class:`Head`, or a whole
    :class:`Rollout`. ``turns`` is exact on a Rollout; a Head's is the low end of a range."""

    @property
    def reward(self) -> float: ...
    @property
    def rollout_id(self) -> str: ...
    @property
    def fields(self) -> dict[str, Any]: ...
    @property
    def n_items(self) -> int: ...
    @property
    def turns(self) -> int: ...
    @property
    def uses_tools(self) -> bool: ...
    @property
    def truncated(self) -> bool: ...
    @property
    def task_type(self) -> str: ...
    def field(self, dotted: str) -> Any: ...


class _Fields:
    """What filters read, shared by a full :class:`Rollout` and a decoded-only :class:`Head`."""

    __slots__ = ()
    fields: dict[str, Any]
    reward: float
    rollout_id: str

    @property
    def task_type(self) -> str:
        """metadata.task_type, else task_type, task_name, domain_name, agent_ref.name, else "general"."""
        meta = self.fields.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("task_type"), str):
            return str(meta["task_type"])
        for key in ("task_type", "task_name", "domain_name"):
            if isinstance(self.fields.get(key), str):
                return str(self.fields[key])
        agent = self.fields.get("agent_ref")
        if isinstance(agent, dict) and isinstance(agent.get("name"), str):
            return str(agent["name"])
        return "general"

    def field(self, dotted: str) -> Any:
        """A value by dotted path over the line's fields (``metadata.task_type``); None when absent."""
        head, _, rest = dotted.partition(".")
        if head == "reward":
            value: Any = self.reward
        elif head == "rollout_id":
            value = self.rollout_id
        elif head == "prompt_id":
            value = getattr(self, "prompt_id", None)
        elif head == "task_type":
            value = self.fields.get("task_type", self.task_type)
        else:
            value = self.fields.get(head)
        for key in rest.split(".") if rest else ():
            if isinstance(value, dict):
                value = value.get(key)
            elif isinstance(value, list) and key.lstrip("-").isdigit():
                index = int(key)
                value = value[index] if -len(value) <= index < len(value) else None
            else:
                return None
        return value


@dataclass(slots=True)
class Rollout(_Fields):
    """One agent trajectory, converted to chat messages, with its identity and reward."""

    file: str
    line: int
    rollout_id: str  # hash of the line's bytes: the same rollout has the same id in any file or run
    prompt_id: str  # hash of the canonical prompt (prompt messages + tools): groups repeats of one task
    reward: float
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    prompt_len: int  # messages[:prompt_len] is the prompt; the rest was produced in this rollout
    truncated: bool
    n_items: int  # items in response.output
    facts: dict[str, int]  # conversion facts (item types, reasoning shapes, ...)
    fields: dict[str, Any]  # other top-level fields of the line (metadata, task_name, verifier outputs)
    assistant_turns: int = 0  # assistant messages after the prompt
    uses_tools: bool = False  # the model called a tool
    task_index: int | None = None  # _ng_task_index: per NeMo Gym run only, a hint, never an identity
    rollout_index: int | None = None  # _ng_rollout_index
    hidden_reasoning: tuple[tuple[int, str], ...] = ()  # see rollforge.convert.Conversation

    @property
    def prompt(self) -> list[dict[str, Any]]:
        return self.messages[: self.prompt_len]

    @property
    def completion(self) -> list[dict[str, Any]]:
        return self.messages[self.prompt_len :]

    @property
    def turns(self) -> int:
        return self.assistant_turns


class Head(_Fields):
    """A rollout line decoded without its text: enough to drop it on reward, length or fields before paying
    for conversion. The turn count is a range, ``turns`` to ``turns_at_most``: a turn of reasoning alone may
    or may not hold text (a filter reading it is judged at both ends: ``rollforge.filters``). Fields and the
    rollout id are worked out only if a filter asks for them."""

    __slots__ = (
        "_fields",
        "_names",
        "decoded",
        "dropped",
        "file",
        "line",
        "n_items",
        "raw_line",
        "reward",
        "truncated",
        "turns",
        "turns_at_most",
        "uses_tools",
    )

    def __init__(
        self,
        file: str,
        line: int,
        raw: bytes,
        obj: Any,
        names: tuple[str, ...],
        reward: float,
        n_items: int,
        truncated: bool,
        uses_tools: bool,
        turns: tuple[int, int],
    ) -> None:
        self.file, self.line, self.raw_line, self.decoded, self._names = file, line, raw, obj, names
        self.reward, self.n_items, self.truncated, self.uses_tools = reward, n_items, truncated, uses_tools
        self.turns, self.turns_at_most = turns
        self._fields: dict[str, Any] | None = None
        self.dropped: str | None = None  # the filter the first look dropped it under (rollforge.filtering)

    @property
    def fields(self) -> dict[str, Any]:  # type: ignore[override]
        if self._fields is None:
            self._fields = {
                n: v for n in self._names if (v := getattr(self.decoded, n, _UNSET)) is not _UNSET
            }
        return self._fields

    def with_turns(self, turns: int) -> Head:
        """This head with an exact turn count (to test a check at each end of the range)."""
        view = Head(
            self.file,
            self.line,
            self.raw_line,
            self.decoded,
            self._names,
            self.reward,
            self.n_items,
            self.truncated,
            self.uses_tools,
            (turns, turns),
        )
        view._fields = self._fields
        return view

    @property
    def rollout_id(self) -> str:  # type: ignore[override]
        from rollforge.identity import rollout_id

        return rollout_id(self.raw_line)
