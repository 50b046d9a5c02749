"""DPO rows from (chosen, rejected) records of the same prompt.

``trl``      {"prompt", "chosen", "rejected" (message lists), "tools": JSON string, "chosen_reward",
             "rejected_reward", "margin", "prompt_id", "chosen_id", "rejected_id"}
``nemo-rl``  PreferenceDataset: {"context", "completions": [{"rank": 0, "completion"}, {"rank": 1, ...}]}
             (exactly two completions, lower rank preferred, never tied)
``openai``   {"input": {"messages", "tools", "parallel_tool_calls"}, "preferred_output": [assistant msg],
             "non_preferred_output": [assistant msg]}; a side that is not exactly one assistant message is
             skipped (``not_single_assistant_message``)

Completions are trimmed to end on an assistant message. ``split_at_divergence`` moves the messages both
completions share (up to an assistant turn) into the prompt, so only the differing part is compared.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rollforge.export.messages import style, tools_json, trim_trailing
from rollforge.export.sft import Skip

DPO_FORMATS = ("trl", "nemo-rl", "openai")
DEFAULT_REASONING = {"trl": "field", "nemo-rl": "field", "openai": "think"}


def shared_prefix(chosen: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> int:
    """Length of the common start of two completions, backed off so both continue with an assistant turn."""
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    while n > 0 and not (
        n < len(chosen) and n < len(rejected) and chosen[n]["role"] == rejected[n]["role"] == "assistant"
    ):
        n -= 1
    return n


def dpo_row(
    chosen: dict[str, Any], rejected: dict[str, Any], fmt: str, reasoning: str, split: bool, facts: Counter
) -> dict[str, Any]:
    prompt = chosen["messages"][: chosen["prompt_len"]]
    good, _ = trim_trailing(chosen["messages"][chosen["prompt_len"] :])
    bad, _ = trim_trailing(rejected["messages"][rejected["prompt_len"] :])
    if split:
        n = shared_prefix(good, bad)
        if n:
            facts["split_at_divergence"] += 1
            prompt, good, bad = prompt + good[:n], good[n:], bad[n:]
    arguments = "string" if fmt == "openai" else "object"
    prompt, good, bad = (style(m, reasoning, arguments) for m in (prompt, good, bad))
    extra = {"chosen_reward": chosen["reward"], "rejected_reward": rejected["reward"],
             "margin": chosen["reward"] - rejected["reward"], "prompt_id": chosen["prompt_id"]}  # fmt: skip
    if fmt == "trl":
        return {"prompt": prompt, "chosen": good, "rejected": bad, "tools": tools_json(chosen["tools"]), **extra,
                "chosen_id": chosen["rollout_id"], "rejected_id": rejected["rollout_id"]}  # fmt: skip
    if fmt == "nemo-rl":
        completions = [{"rank": 0, "completion": good}, {"rank": 1, "completion": bad}]
        return {"context": prompt, "completions": completions, **extra}
    if fmt == "openai":
        if len(good) != 1 or len(bad) != 1:
            raise Skip("not_single_assistant_message")
        parallel = any(len(m.get("tool_calls") or ()) > 1 for m in (*good, *bad))
        return {"input": {"messages": prompt, "tools": chosen["tools"], "parallel_tool_calls": parallel},
                "preferred_output": good, "non_preferred_output": bad}  # fmt: skip
    raise ValueError(fmt)
