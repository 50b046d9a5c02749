"""DPO rows from (chosen, rejected) rollouts of the same prompt.

``trl``      {"prompt", "chosen", "rejected" (message lists), "tools": JSON string, "chosen_reward",
             "rejected_reward", "margin", "prompt_id", "env", "chosen_id", "rejected_id"}
``nemo-rl``  PreferenceDataset: {"context", "completions": [{"rank": 0, "completion"}, {"rank": 1, ...}]}
             (exactly two completions, lower rank preferred, never tied) + the same reward/id fields
``openai``   {"input": {"messages", "tools", "parallel_tool_calls"}, "preferred_output": [assistant msg],
             "non_preferred_output": [assistant msg]}; a side that is not exactly one assistant message is
             skipped (``not_single_assistant_message``)
``sharegpt`` LLaMA-Factory pairwise (``ranking: true``): {"conversations" (the prompt's turns), "chosen",
             "rejected" (one turn each), "system", "tools"}; a side that is not one assistant message is
             skipped (``not_single_sharegpt_turn``), as is a prompt with no sharegpt form

Completions are trimmed to end on an assistant message. Each rollout is rendered once into
:class:`Pieces` where it is read; a pair is then assembled from encoded pieces without decoding them
(``trl_pair``, ``nemo_rl_pair``, ``openai_pair``, ``sharegpt_pair``: the renderers ``rollforge.export.formats`` declares).
``split_at_divergence`` moves the messages both completions share (up to an assistant turn) into the prompt.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec

from rollforge.export.messages import Styling, trim_trailing
from rollforge.export.sft import Skip
from rollforge.export.sharegpt import sharegpt_pairwise_row

_ENCODE = msgspec.json.encode


class Pieces(msgspec.Struct, array_like=True):
    """One rollout rendered for DPO: encoded prompt, completion and tools, plus what pairing must know."""

    prompt: msgspec.Raw
    completion: msgspec.Raw
    tools: msgspec.Raw
    single_assistant: bool  # the completion is exactly one assistant message (openai preference format)
    parallel_calls: bool


def pieces(record: dict[str, Any], styling: Styling) -> Pieces:
    prompt = styling.apply(record["messages"][: record["prompt_len"]])
    completion, _ = trim_trailing(record["messages"][record["prompt_len"] :])
    completion = styling.apply(completion)
    return Pieces(
        prompt=msgspec.Raw(_ENCODE(prompt)),
        completion=msgspec.Raw(_ENCODE(completion)),
        tools=msgspec.Raw(_ENCODE(record["tools"])),
        single_assistant=len(completion) == 1 and completion[0]["role"] == "assistant",
        parallel_calls=any(len(m.get("tool_calls") or ()) > 1 for m in completion),
    )


@dataclass(frozen=True)
class PairInfo:
    chosen_reward: float
    rejected_reward: float
    prompt_id: str
    chosen_id: str
    rejected_id: str
    env: str = ""  # the environment of the prompt (both sides share it)


# Pair rows, built from encoded pieces (the fast path: nothing is decoded). The encoder writes them.


def _rewards(info: PairInfo) -> dict[str, Any]:
    return {
        "chosen_reward": info.chosen_reward,
        "rejected_reward": info.rejected_reward,
        "margin": info.chosen_reward - info.rejected_reward,
        "prompt_id": info.prompt_id,
        "env": info.env,
    }


def trl_pair(chosen: Pieces, rejected: Pieces, info: PairInfo, notes: Counter) -> dict[str, Any]:
    tools = msgspec.Raw(_ENCODE(bytes(chosen.tools).decode()))
    return {
        "prompt": chosen.prompt,
        "chosen": chosen.completion,
        "rejected": rejected.completion,
        "tools": tools,
        **_rewards(info),
        "chosen_id": info.chosen_id,
        "rejected_id": info.rejected_id,
    }


def nemo_rl_pair(chosen: Pieces, rejected: Pieces, info: PairInfo, notes: Counter) -> dict[str, Any]:
    completions = [
        {"rank": 0, "completion": chosen.completion},
        {"rank": 1, "completion": rejected.completion},
    ]
    return {"context": chosen.prompt, "completions": completions, **_rewards(info)}


def openai_pair(chosen: Pieces, rejected: Pieces, info: PairInfo, notes: Counter) -> dict[str, Any]:
    if not (chosen.single_assistant and rejected.single_assistant):
        raise Skip("not_single_assistant_message")
    parallel = chosen.parallel_calls or rejected.parallel_calls
    return {
        "input": {"messages": chosen.prompt, "tools": chosen.tools, "parallel_tool_calls": parallel},
        "preferred_output": chosen.completion,
        "non_preferred_output": rejected.completion,
    }


def sharegpt_pair(chosen: Pieces, rejected: Pieces, info: PairInfo, notes: Counter) -> dict[str, Any]:
    if not (chosen.single_assistant and rejected.single_assistant):
        raise Skip("not_single_sharegpt_turn")
    decode = msgspec.json.decode
    good, bad = decode(chosen.completion)[0], decode(rejected.completion)[0]
    row = sharegpt_pairwise_row(decode(chosen.prompt), good, bad, bytes(chosen.tools).decode(), notes)
    if row is None:
        raise Skip("prompt_not_representable_in_sharegpt")
    return row


def _without_ids(message: dict[str, Any]) -> dict[str, Any]:
    """A message as compared across rollouts: tool-call ids are per rollout, so they do not count."""
    out = {k: v for k, v in message.items() if k != "tool_call_id"}
    if "tool_calls" in out:
        out["tool_calls"] = [{k: v for k, v in call.items() if k != "id"} for call in out["tool_calls"]]
    return out


def shared_prefix(chosen: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> int:
    """Length of the common start of two completions (tool-call ids aside), backed off so both continue
    with an assistant turn. The chosen side's messages become the shared prompt."""
    n = 0
    while n < min(len(chosen), len(rejected)) and _without_ids(chosen[n]) == _without_ids(rejected[n]):
        n += 1
    while n > 0 and not (
        n < len(chosen) and n < len(rejected) and chosen[n]["role"] == rejected[n]["role"] == "assistant"
    ):
        n -= 1
    return n


def split_at_divergence(chosen: Pieces, rejected: Pieces, facts: Counter) -> tuple[Pieces, Pieces]:
    """Move the shared start of both completions into the prompt (decodes the pieces: an opt-in path)."""
    good = msgspec.json.decode(chosen.completion)
    bad = msgspec.json.decode(rejected.completion)
    n = shared_prefix(good, bad)
    if not n:
        return chosen, rejected
    facts["split_at_divergence"] += 1
    prompt = msgspec.Raw(_ENCODE(msgspec.json.decode(chosen.prompt) + good[:n]))
    good, bad = good[n:], bad[n:]

    def rebuilt(p: Pieces, completion: list[dict[str, Any]]) -> Pieces:
        single = len(completion) == 1 and completion[0]["role"] == "assistant"
        parallel = any(len(m.get("tool_calls") or ()) > 1 for m in completion)
        return Pieces(prompt, msgspec.Raw(_ENCODE(completion)), p.tools, single, parallel)

    return rebuilt(chosen, good), rebuilt(rejected, bad)
