"""SFT rows, one per kept rollout, in the shape each trainer reads (field guide section 4).

``trl``      {"messages", "tools": JSON string, "prompt_id", "rollout_id", "reward", "task_type", "env"}
``openai``   {"messages", "tools", "parallel_tool_calls"}; string arguments; prompt-side assistant
             messages (history the model did not write in this rollout) carry ``weight: 0``
``nemo-rl``  {"messages", "tools"} for NeMo RL's ``openai_format`` loader: last message is the assistant's
``sharegpt`` LLaMA-Factory: {"conversations": [{"from", "value"}], "system", "tools"} (see sharegpt.py)

Every format ends on an assistant message: trailing tool/user messages are trimmed and counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rollforge.export.messages import Styling, tools_json, trim_trailing
from rollforge.export.sharegpt import sharegpt_row
from rollforge.schema import plain
from rollforge.tools import UNDECLARED, calls_undeclared_tool


class Skip(Exception):
    """A row the target format cannot represent; ``reason`` is counted, the row is not written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ending_on_the_model(record: dict[str, Any], notes: Counter) -> list[dict[str, Any]]:
    messages, trimmed = trim_trailing(record["messages"])
    if trimmed:
        notes["trimmed_trailing_messages"] += trimmed
    if calls_undeclared_tool(messages, record["tools"]):
        notes[UNDECLARED] += 1
    return messages


def trl_row(record: dict[str, Any], styling: Styling, notes: Counter) -> dict[str, Any]:
    messages = ending_on_the_model(record, notes)
    return {"messages": styling.apply(messages), **trl_columns(record)}


def trl_columns(record: dict[str, Any]) -> dict[str, Any]:
    """What a TRL row carries beside its messages (SFT and KTO alike): the tools, and where it came from."""
    return {
        "tools": tools_json(record["tools"]),
        "prompt_id": record["prompt_id"],
        "rollout_id": record["rollout_id"],
        "reward": record["reward"],
        "task_type": record["task_type"],
        "env": record["env"],
    }


def openai_row(record: dict[str, Any], styling: Styling, notes: Counter) -> dict[str, Any]:
    messages = ending_on_the_model(record, notes)
    styled = styling.apply(messages)  # the format's styling drops tool messages' names
    for i, msg in enumerate(styled):
        if msg["role"] == "assistant":
            styled[i] = {**msg, "weight": 0 if i < record["prompt_len"] else 1}
    row: dict[str, Any] = {"messages": styled, "tools": record["tools"]}
    row["parallel_tool_calls"] = any(len(m.get("tool_calls") or ()) > 1 for m in messages)
    return row


def nemo_rl_row(record: dict[str, Any], styling: Styling, notes: Counter) -> dict[str, Any]:
    messages = ending_on_the_model(record, notes)
    return {"messages": styling.apply(messages), "tools": record["tools"]}


def sharegpt_sft_row(record: dict[str, Any], styling: Styling, notes: Counter) -> dict[str, Any]:
    messages = ending_on_the_model(record, notes)
    shared = sharegpt_row(plain(styling.apply(messages)), record["tools"], notes)
    if shared is None:
        raise Skip("not_representable_in_sharegpt")
    return shared
