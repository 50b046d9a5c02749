"""LLaMA-Factory's ``sharegpt`` format with tools.

Turns alternate strictly: odd positions ``human``/``observation``, even positions ``gpt``/``function_call``
(LLaMA-Factory's ``SharegptDatasetConverter`` drops rows that break this). Rules:
- the leading system message goes to the ``system`` column, tools (chat shape) to ``tools`` as a JSON string;
- an assistant turn with tool calls becomes one ``function_call`` turn whose value is the JSON of
  ``{"name", "arguments"}`` (a list of them for parallel calls); text or reasoning beside the calls has no
  place in that turn and is dropped, counted as ``sharegpt_text_beside_calls``;
- consecutive tool outputs become one ``observation`` turn, joined as LLaMA-Factory's own converter does;
- consecutive user turns are merged with a blank line (counted as ``sharegpt_merged_turns``);
- rows with images, or that cannot alternate (an assistant turn first), are not representable;
- a DPO pair (``ranking: true``) is the prompt's turns plus one ``chosen`` and one ``rejected`` turn: a side
  that is more than one assistant message (a call, its output, an answer) has no pairwise form.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

OBSERVATION_JOIN = "\n</tool_response>\n<tool_response>\n"  # as LLaMA-Factory joins parallel tool responses


def _turn(msg: dict[str, Any], facts: Counter) -> tuple[str, str]:
    role = msg["role"]
    if role == "assistant" and msg.get("tool_calls"):
        calls = [
            {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
            for c in msg["tool_calls"]
        ]
        if msg.get("content") or msg.get("reasoning_content"):
            facts["sharegpt_text_beside_calls"] += 1
        return "function_call", msgspec.json.encode(calls[0] if len(calls) == 1 else calls).decode()
    if role == "assistant":
        return "gpt", msg.get("content") or ""
    if role == "tool":
        return "observation", msg["content"]
    return "human", msg["content"]


def _conversation(messages: list[dict[str, Any]], facts: Counter) -> tuple[str, list[dict[str, str]]] | None:
    """(system, turns) of messages, consecutive human or observation turns merged; None when there is no
    sharegpt form (images, a system message mid-conversation)."""
    if any(not isinstance(m.get("content"), str) for m in messages):
        return None  # image parts: LLaMA-Factory wants them in a separate images column of file paths
    system = ""
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"], messages[1:]
    turns: list[dict[str, str]] = []
    for msg in messages:
        if msg["role"] == "system":
            return None  # a system message mid-conversation has no sharegpt turn
        kind, value = _turn(msg, facts)
        if turns and kind == turns[-1]["from"] and kind in ("human", "observation"):
            joiner = OBSERVATION_JOIN if kind == "observation" else "\n\n"
            turns[-1]["value"] += joiner + value
            if kind == "human":
                facts["sharegpt_merged_turns"] += 1
            continue
        turns.append({"from": kind, "value": value})
    return system, turns


def _alternates(turns: list[dict[str, str]]) -> bool:
    odd, even = ("human", "observation"), ("gpt", "function_call")
    return all(t["from"] in (odd, even)[i % 2] for i, t in enumerate(turns))


def sharegpt_row(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]], facts: Counter
) -> dict[str, Any] | None:
    found = _conversation(messages, facts)
    if found is None or len(found[1]) % 2 or not _alternates(found[1]):
        return None
    system, turns = found
    return {"conversations": turns, "system": system, "tools": msgspec.json.encode(tools).decode()}


def sharegpt_pairwise_row(
    prompt: list[dict[str, Any]],
    chosen: dict[str, Any],
    rejected: dict[str, Any],
    tools: str,
    facts: Counter,
) -> dict[str, Any] | None:
    """LLaMA-Factory's pairwise sharegpt row (``ranking: true``): ``conversations`` is the prompt, an odd
    number of alternating turns ending on a human or observation turn; ``chosen`` and ``rejected`` are one
    gpt or function_call turn each (its converter's only shape for a side). None when there is no such form."""
    found = _conversation(prompt, facts)
    sides = [m for m in (chosen, rejected) if m["role"] == "assistant" and isinstance(m.get("content"), str)]
    if found is None or len(sides) != 2 or len(found[1]) % 2 == 0 or not _alternates(found[1]):
        return None
    system, turns = found
    good, bad = (dict(zip(("from", "value"), _turn(m, facts), strict=True)) for m in sides)
    return {"conversations": turns, "chosen": good, "rejected": bad, "system": system, "tools": tools}


def dataset_info(name: str, file_name: str, ranking: bool = False) -> dict[str, Any]:
    """The dataset_info.json entry LLaMA-Factory needs to load the file (``ranking``: pairwise rows)."""
    columns = {"messages": "conversations", "system": "system", "tools": "tools"}
    if ranking:
        columns |= {"chosen": "chosen", "rejected": "rejected"}
    entry: dict[str, Any] = {"file_name": file_name, "formatting": "sharegpt"}
    if ranking:
        entry["ranking"] = True
    entry |= {
        "columns": columns,
        "tags": {
            "role_tag": "from",
            "content_tag": "value",
            "user_tag": "human",
            "assistant_tag": "gpt",
            "observation_tag": "observation",
            "function_tag": "function_call",
        },
    }
    return {name: entry}


def dataset_info_files(files: dict[str, str], pairwise: dict[str, str] | None = None) -> dict[str, bytes]:
    """The side file LLaMA-Factory reads beside the written files: SFT ``files`` and ``pairwise`` (DPO)
    files, each as dataset name -> file name."""
    info = {name: dataset_info(name, file_name)[name] for name, file_name in files.items()}
    info |= {name: dataset_info(name, file, ranking=True)[name] for name, file in (pairwise or {}).items()}
    return {"dataset_info.json": msgspec.json.format(msgspec.json.encode(info), indent=2)}
