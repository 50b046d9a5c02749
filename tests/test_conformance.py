"""Conformance against the real NeMo Gym rollouts in ../shared (skips cleanly when that folder is absent).

Every line is accounted for; every conversation is valid and renders through a tool-aware Hugging Face chat
template; and no reasoning text, tool call or tool output present in a rollout is missing from its converted
messages. The expectations are computed from the raw JSON with the standard library, independently of
rollforge's converter."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rollforge.cli.main import main
from rollforge.export.messages import style
from rollforge.io.read import read_rollouts
from rollforge.rollout import Reject, Rollout

THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def raw_lines(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                out.append((path.name, json.loads(line)))
    return out


def expected_content(row: dict[str, Any]) -> dict[str, list[Any]]:
    """Reasoning texts, function calls and tool outputs of a raw rollout, by the field guide's rules."""
    output = row["response"]["output"]
    if output and isinstance(output[0], list):
        output = output[-1]
    found: dict[str, list[Any]] = {"reasoning": [], "calls": [], "outputs": []}
    for item in output:
        kind = item.get("type") or "message"
        if kind == "reasoning":
            found["reasoning"] += [s["text"] for s in item.get("summary") or [] if s.get("text")]
        elif kind == "function_call":
            found["calls"].append((item["call_id"], item["name"], item["arguments"]))
        elif kind == "function_call_output":
            found["outputs"].append((item["call_id"], item["output"]))
        elif kind == "message" and item.get("role") == "assistant":
            content = item["content"]
            text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
            found["reasoning"] += [t.strip("\n") for t in THINK.findall(text) if t.strip()]
            if "</think>" in text and "<think>" not in text:
                found["reasoning"].append(text.partition("</think>")[0].strip("\n"))
    return found


@pytest.fixture(scope="module")
def rollouts(shared_rollouts: Path) -> list[Rollout | Reject]:
    return list(read_rollouts([str(shared_rollouts)]))


def test_every_line_is_accounted_for(shared_rollouts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(shared_rollouts), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    lines = len(raw_lines(shared_rollouts))
    assert summary["lines"] == lines == summary["rollouts"] + len(summary["rejected"])
    assert summary["lines"] == 100  # the 20 real files, 5 rollouts each


def test_conversations_are_valid(rollouts: list[Rollout | Reject]) -> None:
    for r in rollouts:
        assert isinstance(r, Rollout), r
        calls: set[str] = set()
        for i, msg in enumerate(r.messages):
            assert msg["role"] in {"system", "user", "assistant", "tool"}
            if msg["role"] == "system":
                assert i == 0 or r.facts.get("late_system"), (r.file, r.line)
            if msg["role"] == "assistant":
                assert msg["content"] or msg.get("reasoning_content") or msg.get("tool_calls"), (
                    r.file,
                    r.line,
                )
                calls |= {c["id"] for c in msg.get("tool_calls") or ()}
            if msg["role"] == "tool":
                assert msg["tool_call_id"] in calls, (r.file, r.line)
                assert msg["name"]
        assert 0 < r.prompt_len <= len(r.messages)


def test_nothing_the_model_or_tools_produced_is_missing(
    shared_rollouts: Path, rollouts: list[Rollout | Reject]
) -> None:
    raws = raw_lines(shared_rollouts)
    assert len(raws) == len(rollouts)
    totals = {"reasoning": 0, "calls": 0, "outputs": 0}
    for (name, row), r in zip(raws, rollouts, strict=True):
        assert isinstance(r, Rollout)
        want = expected_content(row)
        generated = r.messages[r.prompt_len :]
        reasoning = [m.get("reasoning_content") or "" for m in generated if m["role"] == "assistant"]
        for text in want["reasoning"]:
            assert any(text.strip() in got for got in reasoning), (name, text[:60])
        calls = [(c["id"], c["function"]["name"], c["function"]["arguments"])
                 for m in generated for c in m.get("tool_calls") or ()]  # fmt: skip
        assert sorted(calls) == sorted(want["calls"]), name
        outputs = [(m["tool_call_id"], m["content"]) for m in generated if m["role"] == "tool"]
        assert sorted(outputs) == sorted(want["outputs"]), name
        assert len(want["reasoning"]) <= sum(1 for t in reasoning if t), name
        for key in totals:
            totals[key] += len(want[key])
    # The corpus really holds what is being checked (these are the real files' counts).
    assert totals["calls"] == totals["outputs"] == 202
    assert totals["reasoning"] >= 100


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    transformers = pytest.importorskip("transformers")
    from rollforge.tiny import build_tiny_model

    return transformers.AutoTokenizer.from_pretrained(build_tiny_model(tmp_path_factory.mktemp("tiny")))


def test_every_conversation_renders_through_a_tool_aware_chat_template(
    rollouts: list[Rollout | Reject], tokenizer: Any
) -> None:
    for r in rollouts:
        assert isinstance(r, Rollout)
        text = tokenizer.apply_chat_template(style(r.messages), tools=r.tools or None, tokenize=False)
        for msg in r.messages:
            if msg["role"] == "assistant" and msg["content"]:
                assert msg["content"] in text, (r.file, r.line)
            for call in msg.get("tool_calls") or ():
                assert call["function"]["name"] in text
        for tool in r.tools:
            assert tool["function"]["name"] in text
