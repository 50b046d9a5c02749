"""Builders for NeMo Gym rollout lines in their real shape (``responses_create_params`` + ``response.output`` +
``reward``), and small helpers to run the dataset pipelines on them and read what they wrote.

Items follow the field guide, section 2: assistant messages with ``output_text`` parts, ``reasoning`` with a
summary (or hidden, with only ``encrypted_content``), ``function_call`` with JSON-string arguments,
``function_call_output``, and ``user`` messages inside the output (environment turns).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rollforge.identity import rollout_id


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


def system(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "system", "content": text}


def said(text: str) -> dict[str, Any]:
    """An assistant message as a prompt-side input item (history the model did not write in this rollout)."""
    return {"type": "message", "role": "assistant", "content": text}


def answer(text: str) -> dict[str, Any]:
    """An assistant message in ``response.output``."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def think(text: str | None) -> dict[str, Any]:
    """A reasoning item: summary text, or hidden reasoning (no text, only encrypted content) for ``None``."""
    summary = [] if text is None else [{"type": "summary_text", "text": text}]
    return {"id": "rs_1", "type": "reasoning", "summary": summary, "encrypted_content": "gAAAA-opaque"}


def call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "id": f"fc_{call_id}",
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(arguments),
        "status": "completed",
    }


def result(call_id: str, text: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def tool(name: str, *params: str) -> dict[str, Any]:
    """A flat Responses function tool taking string parameters."""
    return {
        "type": "function",
        "name": name,
        "description": f"The {name} tool.",
        "parameters": {
            "type": "object",
            "properties": {p: {"type": "string"} for p in params},
            "required": list(params[:1]),
        },
        "strict": True,
    }


def chat_tool(name: str, *params: str) -> dict[str, Any]:
    """The same tool in the nested chat-completions shape rollforge exports."""
    flat = tool(name, *params)
    return {
        "type": "function",
        "function": {k: flat[k] for k in ("name", "description", "parameters")},
    }


def rollout(
    prompt: str | list[dict[str, Any]],
    output: list[dict[str, Any]],
    reward: float | None = 1.0,
    *,
    tools: Iterable[dict[str, Any]] = (),
    instructions: str | None = None,
    truncated: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    """One rollout line as NeMo Gym writes it (most create-params present with nulls, as in real files)."""
    params = {
        "input": prompt,
        "tools": list(tools),
        "instructions": instructions,
        "temperature": None,
        "model": None,
        "parallel_tool_calls": True,
    }
    response = {
        "id": "resp_1",
        "object": "response",
        "output": output,
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "status": "incomplete" if truncated else "completed",
        "usage": None,
    }
    return {"responses_create_params": params, "response": response, "reward": reward, **fields}


def write_jsonl(path: Path, rows: Iterable[dict[str, Any] | str]) -> str:
    """Rows as JSONL (a str row is written as it is: a broken line, a placeholder)."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def ids_by_field(path: str | Path, name: str = "task_id") -> dict[str, Any]:
    """rollout_id -> the line's ``name`` field, for every JSON object line of a rollouts file."""
    out = {}
    for line in Path(path).read_bytes().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out[rollout_id(line)] = obj.get(name)
    return out


def check_sft_accounting(acc: dict[str, Any]) -> None:
    """Every input line is written, filtered with a reason, or rejected with a reason: nothing else."""
    assert acc["lines"] == acc["written"] + sum(acc["filtered"].values()) + sum(acc["rejected"].values()), acc
    assert acc["lines"] == acc["rollouts"] + sum(acc["rejected"].values()), acc
