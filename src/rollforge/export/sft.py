"""SFT rows, one per kept rollout, in the shape each trainer reads (field guide section 4).

``trl``      {"messages", "tools": JSON string, "prompt_id", "rollout_id", "reward", "task_type"}
``openai``   {"messages", "tools", "parallel_tool_calls"}; string arguments; prompt-side assistant
             messages (history the model did not write in this rollout) carry ``weight: 0``
``nemo-rl``  {"messages", "tools"} for NeMo RL's ``openai_format`` loader: last message is the assistant's
``sharegpt`` LLaMA-Factory: {"conversations": [{"from", "value"}], "system", "tools"} (see sharegpt.py)

Every format ends on an assistant message: trailing tool/user messages are trimmed and counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rollforge.export.messages import openai_messages, style, tools_json, trim_trailing
from rollforge.export.sharegpt import sharegpt_row
from rollforge.schema import plain
from rollforge.tools import UNDECLARED, calls_undeclared_tool

SFT_FORMATS = ("trl", "openai", "nemo-rl", "sharegpt")
# Where reasoning goes when --reasoning is not given: formats without a reasoning field keep it inline.
DEFAULT_REASONING = {"trl": "field", "openai": "think", "nemo-rl": "field", "sharegpt": "think"}


class Skip(Exception):
    """A row the target format cannot represent; ``reason`` is counted, the row is not written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sft_row(record: dict[str, Any], fmt: str, reasoning: str, facts: Counter) -> dict[str, Any]:
    messages, trimmed = trim_trailing(record["messages"])
    if trimmed:
        facts["trimmed_trailing_messages"] += trimmed
    if calls_undeclared_tool(messages, record["tools"]):
        facts[UNDECLARED] += 1
    if fmt == "trl":
        return {
            "messages": style(messages, reasoning, "object"),
            "tools": tools_json(record["tools"]),
            "prompt_id": record["prompt_id"],
            "rollout_id": record["rollout_id"],
            "reward": record["reward"],
            "task_type": record["task_type"],
        }
    if fmt == "openai":
        styled = openai_messages(style(messages, reasoning, "string"))
        for i, msg in enumerate(styled):
            if msg["role"] == "assistant":
                styled[i] = {**msg, "weight": 0 if i < record["prompt_len"] else 1}
        row: dict[str, Any] = {"messages": styled, "tools": record["tools"]}
        row["parallel_tool_calls"] = any(len(m.get("tool_calls") or ()) > 1 for m in messages)
        return row
    if fmt == "nemo-rl":
        return {"messages": style(messages, reasoning, "object"), "tools": record["tools"]}
    if fmt == "sharegpt":
        shared = sharegpt_row(plain(style(messages, reasoning, "object")), record["tools"], facts)
        if shared is None:
            raise Skip("not_representable_in_sharegpt")
        return shared
    raise ValueError(fmt)
