"""Conformance against the real NeMo Gym rollouts in ../shared/rollouts/nemo-gym (skips cleanly without them).

Every line is accounted for; every converted conversation is valid and renders through a tool-aware Hugging
Face chat template; and nothing the model or the tools produced is lost: each reasoning text, tool call and
tool output found in the raw JSON appears in the converted messages. The expectations are computed from the raw
lines with the standard library only (no rollforge code), so a converter bug cannot hide itself. Nothing here
depends on how many files or lines the folder holds, or on every line being a usable rollout."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from rollforge.cli.main import main
from rollforge.export.messages import style
from rollforge.io.read import read_rollouts
from rollforge.reasons import REJECT_REASONS
from rollforge.rollout import Reject, Rollout

THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
ITEM_TYPES = {"message", "reasoning", "function_call", "function_call_output"}
COMPANION = re.compile(r"_(failures|materialized_inputs|aggregate_metrics)\.jsonl?$")

Line = tuple[str, int, bytes]  # file name, line number, raw bytes


@pytest.fixture(scope="module")
def raw_lines(shared_rollouts: Path) -> list[Line]:
    """Every non-blank line of the rollouts files, read with plain Python."""
    lines = []
    for path in sorted(shared_rollouts.rglob("*.jsonl")):
        if not COMPANION.search(path.name):
            lines += [
                (str(path), n, raw) for n, raw in enumerate(path.read_bytes().splitlines(), 1) if raw.strip()
            ]
    assert lines, f"no rollouts lines under {shared_rollouts}"
    return lines


@pytest.fixture(scope="module")
def records(shared_rollouts: Path, raw_lines: list[Line]) -> dict[tuple[str, int], Rollout | Reject]:
    got = {(r.file, r.line): r for r in read_rollouts([str(shared_rollouts)])}
    assert sorted(got) == sorted((f, n) for f, n, _ in raw_lines)  # one record per non-blank line, no more
    return got


@pytest.fixture(scope="module")
def rollouts(records: dict[tuple[str, int], Rollout | Reject]) -> list[Rollout]:
    usable = [r for r in records.values() if isinstance(r, Rollout)]
    assert len(usable) >= 0.5 * len(records), "most real lines must be usable rollouts"
    return usable


def load(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --- accounting -------------------------------------------------------------------------------------------------


def test_every_line_is_accounted_for(
    shared_rollouts: Path, raw_lines: list[Line], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(shared_rollouts), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["lines"] == len(raw_lines) == s["rollouts"] + len(s["rejected"])
    assert {r["reason"] for r in s["rejected"]} <= set(REJECT_REASONS)
    assert sum(s["files"].values()) == s["rollouts"]


def test_rejects_are_justified_by_the_raw_line(
    raw_lines: list[Line], records: dict[tuple[str, int], Rollout | Reject]
) -> None:
    """What plain Python says about a line bounds what rollforge may say: broken JSON is invalid_json, a line
    with a response, a finite reward and only known item types is never rejected for its shape or reward."""
    for name, n, raw in raw_lines:
        record, row = records[name, n], load(raw)
        reason = record.reason if isinstance(record, Reject) else None
        if row is None:
            assert reason == "invalid_json", (name, n)
        elif not isinstance(row, dict):
            assert reason == "not_an_object", (name, n)
        elif not isinstance(row.get("response"), dict):
            assert reason in ("no_response", "no_prompt"), (name, n, reason)
        elif well_formed(row):
            assert reason not in ("invalid_json", "not_an_object", "no_response", "no_output", "no_reward",
                                  "bad_reward", "unsupported_item"), (name, n, reason)  # fmt: skip


def well_formed(row: dict[str, Any]) -> bool:
    reward, output = row.get("reward"), row["response"].get("output")
    if isinstance(reward, bool) or not isinstance(reward, int | float) or not math.isfinite(reward):
        return False
    if not isinstance(output, list) or not isinstance(row.get("responses_create_params"), dict):
        return False
    return all(isinstance(i, dict) and (i.get("type") in ITEM_TYPES or "role" in i) for i in transcript(row))


# --- the conversations ------------------------------------------------------------------------------------------


def test_conversations_are_valid(rollouts: list[Rollout]) -> None:
    for r in rollouts:
        where = (r.file, r.line)
        assert 0 < r.prompt_len <= len(r.messages), where
        call_ids: set[str] = set()
        for i, msg in enumerate(r.messages):
            role = msg["role"]
            assert role in ("system", "user", "assistant", "tool"), where
            if role == "system":
                assert i == 0 or r.facts.get("late_system"), where
            elif role == "assistant":
                assert msg["content"] or msg.get("reasoning_content") or msg.get("tool_calls"), where
                assert isinstance(msg["content"], str), where
                for call in msg.get("tool_calls") or ():
                    assert call["type"] == "function" and call["function"]["name"], where
                    json.loads(call["function"]["arguments"])  # a JSON string
                    call_ids.add(call["id"])
            elif role == "tool":
                assert msg["tool_call_id"] in call_ids and msg["name"], where  # answers an earlier call
        generated = r.messages[r.prompt_len :]
        assert r.assistant_turns == sum(m["role"] == "assistant" for m in generated), where
        for tool in r.tools:
            assert tool["type"] == "function" and tool["function"]["name"], where


def transcript(row: dict[str, Any]) -> list[Any]:
    """The items of a rollout: input (when a list) then output (the last step of a nested output)."""
    inputs = row.get("responses_create_params", {}).get("input")
    output = row["response"].get("output") or []
    if output and all(isinstance(step, list) for step in output):
        output = output[-1]
    return (inputs if isinstance(inputs, list) else []) + output


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or p.get("refusal") or "" for p in content if isinstance(p, dict))
    return ""


def produced(row: dict[str, Any]) -> dict[str, list[Any]]:
    """Reasoning texts, function calls and tool outputs in a raw rollout, by the field guide's shapes alone."""
    found: dict[str, list[Any]] = {"reasoning": [], "calls": [], "outputs": []}
    for item in transcript(row):
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "reasoning":
            texts = [p.get("text") for p in item.get("summary") or []]
            if not any(texts):  # raw reasoning_text parts, when there is no summary
                texts = [p.get("text") for p in item.get("content") or [] if isinstance(p, dict)]
            found["reasoning"] += [t for t in texts if isinstance(t, str) and t.strip()]
        elif kind == "function_call":
            found["calls"].append((item["call_id"], item["name"], item.get("arguments")))
        elif kind == "function_call_output":
            found["outputs"].append((item["call_id"], text_of(item.get("output"))))
        elif kind == "message" and item.get("role") == "assistant":
            text = text_of(item.get("content"))
            found["reasoning"] += [t for t in THINK.findall(text) if t.strip()]
            rest = THINK.sub("", text)
            if "<think>" in rest:  # unclosed: generation stopped while reasoning
                found["reasoning"].append(rest.partition("<think>")[2])
            elif "</think>" in rest and "<think>" not in text:  # the chat template opened the tag
                found["reasoning"].append(rest.partition("</think>")[0])
    found["reasoning"] = [t.strip() for t in found["reasoning"] if t.strip()]
    return found


def test_nothing_the_model_or_the_tools_produced_is_lost(
    raw_lines: list[Line], records: dict[tuple[str, int], Rollout | Reject]
) -> None:
    totals = {"reasoning": 0, "calls": 0, "outputs": 0}
    for name, n, raw in raw_lines:
        r = records[name, n]
        if not isinstance(r, Rollout):
            continue
        want, where = produced(json.loads(raw)), (name, n)
        assistant = [m for m in r.messages if m["role"] == "assistant"]
        thoughts = [m["reasoning_content"] for m in assistant if m.get("reasoning_content")]
        for text in want["reasoning"]:
            assert any(text in thought for thought in thoughts), (where, text[:80])
        for thought in thoughts:  # and no reasoning came from nowhere
            assert any(text in thought for text in want["reasoning"]), (where, thought[:80])
        calls = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for m in assistant
                 for c in m.get("tool_calls") or ()]  # fmt: skip
        assert len(calls) == len(want["calls"]), where
        for (cid, fn, args), (want_id, want_fn, want_args) in zip(calls, want["calls"], strict=True):
            assert (cid, fn) == (want_id, want_fn), where
            if isinstance(want_args, str) and want_args.strip():
                assert args == want_args, where  # the original JSON string, byte for byte
            else:  # stored as an object by the agent, or empty
                assert json.loads(args) == (want_args or {}), where
        outputs = [(m["tool_call_id"], m["content"]) for m in r.messages if m["role"] == "tool"]
        assert outputs == want["outputs"], where
        for key in totals:
            totals[key] += len(want[key])
    # the corpus really holds what is checked here
    assert totals["reasoning"] > 0 and totals["calls"] > 0 and totals["outputs"] > 0, totals


# --- rendering through a chat template --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    transformers = pytest.importorskip("transformers")
    from rollforge.tiny import build_tiny_model

    return transformers.AutoTokenizer.from_pretrained(build_tiny_model(tmp_path_factory.mktemp("tiny")))


def test_every_conversation_renders_through_a_tool_aware_chat_template(
    rollouts: list[Rollout], tokenizer: Any
) -> None:
    for r in rollouts:
        where = (r.file, r.line)
        text = tokenizer.apply_chat_template(style(r.messages), tools=r.tools or None, tokenize=False)
        for msg in r.messages:
            if msg["role"] == "assistant":
                assert msg["content"] in text, where
                if msg.get("reasoning_content"):
                    assert msg["reasoning_content"].strip("\n") in text, where
                for call in msg.get("tool_calls") or ():
                    args = json.dumps(json.loads(call["function"]["arguments"]), ensure_ascii=False)
                    assert f'"name": "{call["function"]["name"]}"' in text and args in text, where
            elif msg["role"] == "tool" and isinstance(msg["content"], str):
                assert f'id="{msg["tool_call_id"]}">\n{msg["content"]}\n</tool_response>' in text, where
        for tool in r.tools:
            assert f'"name": "{tool["function"]["name"]}"' in text, where
