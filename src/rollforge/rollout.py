"""The two records every input line becomes: a :class:`Rollout` or a :class:`Reject`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Reject:
    """A line that is not a usable rollout: where it is and why (``reason`` is a stable code)."""

    file: str
    line: int
    reason: str
    message: str

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(slots=True)
class Rollout:
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
    task_index: int | None = None  # _ng_task_index: per NeMo Gym run only, a hint, never an identity
    rollout_index: int | None = None  # _ng_rollout_index

    @property
    def prompt(self) -> list[dict[str, Any]]:
        return self.messages[: self.prompt_len]

    @property
    def completion(self) -> list[dict[str, Any]]:
        return self.messages[self.prompt_len :]

    @property
    def assistant_turns(self) -> int:
        return sum(1 for m in self.completion if m["role"] == "assistant")

    @property
    def uses_tools(self) -> bool:
        return any(m.get("tool_calls") for m in self.completion)

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
        elif head == "prompt_id":
            value = self.prompt_id
        elif head == "rollout_id":
            value = self.rollout_id
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
