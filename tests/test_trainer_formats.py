"""rollforge's own output, as written, goes through the real trainers and meets each trainer's documented rules.

The SFT and DPO files here are what ``make_sft`` / ``make_dpo`` write from the bundled example corpus: loaded
with ``datasets``, trained a few steps with TRL and a tiny offline model, and masked right (assistant tokens
trained; tool outputs and environment turns not). The NeMo RL, OpenAI and TRL rules are then asserted on every
row written from the real NeMo Gym rollouts in ``../shared`` (the conformance corpus).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from datasets import load_dataset
from gym_rollouts import answer, read_jsonl

from rollforge.filters import FilterOptions
from rollforge.pipeline import DpoOptions, SftOptions, make_dpo, make_sft
from rollforge.tiny import build_tiny_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")

MAX_TOKENS = 3000  # rows trained here; the tiny model has 4096 positions

# Every rollout, failures too (the success policy aside): these tests cover every shape the corpora hold.
EVERY = FilterOptions(success_only=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, examples_dir: Path) -> Path:
    sample = (examples_dir / "tool_calling.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), vocab_corpus=sample)


@pytest.fixture(scope="module")
def tokenizer(tiny: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


@pytest.fixture(scope="module")
def sft_rows(tmp_path_factory: pytest.TempPathFactory, examples_dir: Path) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("sft") / "sft.jsonl"
    make_sft([str(examples_dir)], str(out), EVERY, workers=1)
    return read_jsonl(out)


def render(tokenizer: Any, row: dict[str, Any]) -> dict[str, Any]:
    return tokenizer.apply_chat_template(
        row["messages"],
        tools=json.loads(row["tools"]),
        return_dict=True,
        return_assistant_tokens_mask=True,
        tokenize=True,
    )


def spans(tokenizer: Any, ids: list[int], trained: list[int]) -> tuple[list[str], list[str]]:
    """Decoded runs of trained tokens and of context tokens."""
    out: tuple[list[str], list[str]] = ([], [])
    run: list[int] = []
    for i, token in enumerate(ids):
        run.append(token)
        if i == len(ids) - 1 or bool(trained[i + 1]) != bool(trained[i]):
            out[0 if trained[i] else 1].append(tokenizer.decode(run))
            run = []
    return out


def has_env_turn(row: dict[str, Any]) -> bool:
    roles = [m["role"] for m in row["messages"]]
    return "user" in roles[roles.index("assistant") :] if "assistant" in roles else False


def check_masks(tokenizer: Any, row: dict[str, Any], ids: list[int], trained: list[int]) -> None:
    """Assistant turns (reasoning, text, tool calls, end of turn) are trained; everything else is context."""
    trained_spans, context_spans = spans(tokenizer, ids, trained)
    trained_text, context_text = "".join(trained_spans), "".join(context_spans)
    assistants = [m for m in row["messages"] if m["role"] == "assistant"]
    assert len(trained_spans) == len(assistants)
    assert all(span.endswith("<|im_end|>") for span in trained_spans)
    assert "<|im_start|>" not in trained_text and "<tool_response" not in trained_text
    for msg, span in zip(assistants, trained_spans, strict=True):
        if msg.get("reasoning_content"):
            assert span.startswith("<think>\n" + msg["reasoning_content"].strip("\n") + "\n</think>")
        calls = msg.get("tool_calls") or []
        assert span.count("<tool_call>") == len(calls)
        for call in calls:
            assert '{"name": "' + call["function"]["name"] + '", "arguments": ' in span
        if msg["content"]:
            assert msg["content"] in span
    for msg in row["messages"]:
        if msg["role"] == "tool":  # the tool output is context, never trained
            block = f'<tool_response name="{msg["name"]}" id="{msg["tool_call_id"]}">\n{msg["content"]}\n</tool_response>'
            assert block in context_text
    first = next(i for i, m in enumerate(row["messages"]) if m["role"] == "assistant")
    for msg in row["messages"][first:]:
        if msg["role"] == "user":  # an environment turn inside the trajectory: context
            assert f"<|im_start|>user\n{msg['content']}<|im_end|>" in context_text


def pick(rows: list[dict[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
    """The shortest real rows showing each shape: reasoning + tool calls + tool outputs, parallel calls,
    environment user turns, inline reasoning, a plain answer."""
    predicates = [
        lambda r: (
            any(m["role"] == "tool" for m in r["messages"])
            and any(m.get("reasoning_content") and m.get("tool_calls") for m in r["messages"])
        ),
        lambda r: any(len(m.get("tool_calls") or ()) > 1 for m in r["messages"]),
        has_env_turn,
        lambda r: r["task_type"] == "math" and any(m.get("reasoning_content") for m in r["messages"]),
        lambda r: len(r["messages"]) == 2,
    ]
    sized = sorted(rows, key=lambda r: len(render(tokenizer, r)["input_ids"]))
    chosen: list[dict[str, Any]] = []
    for wanted in predicates:
        row = next(r for r in sized if wanted(r))
        assert len(render(tokenizer, row)["input_ids"]) <= MAX_TOKENS
        if row not in chosen:
            chosen.append(row)
    return chosen


def test_every_real_sft_row_masks_only_the_assistant(tokenizer: Any, sft_rows: list[dict[str, Any]]) -> None:
    shapes = {"tool": 0, "env": 0, "reasoning": 0, "parallel": 0}
    for row in sft_rows:
        out = render(tokenizer, row)
        check_masks(tokenizer, row, out["input_ids"], out["assistant_masks"])
        shapes["tool"] += any(m["role"] == "tool" for m in row["messages"])
        shapes["env"] += has_env_turn(row)
        shapes["reasoning"] += any(m.get("reasoning_content") for m in row["messages"])
        shapes["parallel"] += any(len(m.get("tool_calls") or ()) > 1 for m in row["messages"])
    assert all(n > 10 for n in shapes.values()), shapes  # the corpus really has every shape


def test_sft_trainer_trains_on_rollforge_output(
    tmp_path: Path, tiny: Path, tokenizer: Any, sft_rows: list[dict[str, Any]]
) -> None:
    from trl import SFTConfig, SFTTrainer

    subset = pick(sft_rows, tokenizer)
    path = tmp_path / "sft.jsonl"
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in subset), encoding="utf-8"
    )  # rows exactly as written
    data = load_dataset("json", data_files=str(path), split="train")
    assert data.num_rows == len(subset) >= 4
    for loaded, row in zip(data, subset, strict=True):  # Arrow did not pad or null anything
        assert loaded["messages"] == row["messages"] and json.loads(loaded["tools"]) == json.loads(
            row["tools"]
        )
    config = SFTConfig(
        output_dir=str(tmp_path / "out"),
        assistant_only_loss=True,
        max_length=MAX_TOKENS,
        max_steps=3,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        bf16=False,
        report_to="none",
        save_strategy="no",
    )
    trainer = SFTTrainer(model=str(tiny), args=config, train_dataset=data, processing_class=tokenizer)
    processed = trainer.train_dataset
    for i, row in enumerate(subset):
        ids = processed[i]["input_ids"]
        assert ids == render(tokenizer, row)["input_ids"]  # TRL decoded the JSON-string tools itself
        # TRL folds the template's assistant mask into labels: -100 is context
        check_masks(tokenizer, row, ids, [label != -100 for label in processed[i]["labels"]])
    result = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert result.global_step == 3 and len(losses) == 3 and all(math.isfinite(x) for x in losses)


def test_dpo_trainer_trains_on_rollforge_output(
    tmp_path: Path, tiny: Path, tokenizer: Any, examples_dir: Path
) -> None:
    from trl import DPOConfig, DPOTrainer

    out = tmp_path / "dpo.jsonl"
    make_dpo([str(examples_dir)], str(out), EVERY, workers=1)
    rows = read_jsonl(out)

    def size(row: dict[str, Any]) -> int:
        messages = row["prompt"] + row["chosen"] + row["rejected"]
        return len(tokenizer.apply_chat_template(messages, tools=json.loads(row["tools"]), tokenize=True))

    tool_pair = min((r for r in rows if any(m["role"] == "tool" for m in r["chosen"])), key=size)
    env_pair = min(
        (r for r in rows if any(m["role"] == "user" for m in r["chosen"] + r["rejected"])), key=size
    )
    plain = min((r for r in rows if len(r["chosen"]) == len(r["rejected"]) == 1), key=size)
    subset = [tool_pair, env_pair, plain]
    path = tmp_path / "subset.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in subset), encoding="utf-8")
    data = load_dataset("json", data_files=str(path), split="train")
    config = DPOConfig(
        output_dir=str(tmp_path / "out"),
        max_length=MAX_TOKENS,
        max_steps=3,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        bf16=False,
        report_to="none",
        save_strategy="no",
    )
    trainer = DPOTrainer(model=str(tiny), args=config, train_dataset=data, processing_class=tokenizer)
    first = trainer.train_dataset[0]
    chosen = tokenizer.decode(first["chosen_ids"])
    tool_out = next(m for m in tool_pair["chosen"] if m["role"] == "tool")["content"]
    assert tool_out in chosen  # DPO trains every completion token, tool outputs included (TRL's rule)
    assert tokenizer.decode(first["prompt_ids"]).endswith("<|im_start|>assistant\n")
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 3 and all(math.isfinite(entry["loss"]) for entry in logs)


# --- conformance: every row written from the real NeMo Gym rollouts --------------------------------------------


@pytest.fixture(scope="module")
def conformance(tmp_path_factory: pytest.TempPathFactory, shared_rollouts: Path) -> dict[str, Any]:
    """Every format from the real rollouts. Those files hold few repeats of a prompt, so DPO also runs on a
    mirror: each real rollout (reward 1) beside a plain refusal of the same prompt (reward 0)."""
    tmp = tmp_path_factory.mktemp("conformance")
    out: dict[str, Any] = {}
    for fmt in ("trl", "openai", "nemo-rl", "sharegpt"):
        acc = make_sft(
            [str(shared_rollouts)], str(tmp / f"sft-{fmt}.jsonl"), EVERY, SftOptions(format=fmt), workers=1
        )
        out[f"sft-{fmt}"] = (acc, read_jsonl(tmp / f"sft-{fmt}.jsonl"))
    mirror = tmp / "mirror" / "mirror.jsonl"
    mirror.parent.mkdir()
    lines = []
    for path in sorted(shared_rollouts.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("response"), dict):
                lines.append(json.dumps({**obj, "reward": 1.0}))
                refusal = {
                    **obj["response"],
                    "output": [answer("I cannot help with that.")],
                    "incomplete_details": None,
                }
                lines.append(json.dumps({**obj, "response": refusal, "reward": 0.0}))
    mirror.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for fmt in ("trl", "nemo-rl", "openai"):
        for name, src in (("real", shared_rollouts), ("mirror", mirror)):
            target = tmp / f"dpo-{fmt}-{name}.jsonl"
            acc = make_dpo(
                [str(src)], str(target), EVERY, DpoOptions(format=fmt), workers=1, allow_empty=name == "real"
            )
            out[f"dpo-{fmt}-{name}"] = (acc, read_jsonl(target))
    return out


def test_conformance_corpus_is_covered(conformance: dict[str, Any], shared_rollouts: Path) -> None:
    # Counted from the folder, not hard-coded: the reference set grows (sokoban and tetris were added).
    lines = sum(
        1 for p in shared_rollouts.glob("*.jsonl") for raw in p.read_bytes().splitlines() if raw.strip()
    )
    acc, rows = conformance["sft-trl"]
    assert acc["lines"] == lines and len(rows) == acc["written"] > 0.8 * lines
    acc, rows = conformance["dpo-trl-mirror"]
    assert len(rows) == acc["written"] > 0.8 * lines


def test_trl_sft_tools_are_a_json_string_of_nested_chat_tools(
    conformance: dict[str, Any], tokenizer: Any
) -> None:
    _, rows = conformance["sft-trl"]
    with_tools = 0
    for row in rows:
        assert isinstance(row["tools"], str)
        tools = json.loads(row["tools"])
        assert isinstance(tools, list)
        for t in tools:
            assert t["type"] == "function" and set(t) == {"type", "function"}
            assert isinstance(t["function"]["name"], str) and "name" not in t
        with_tools += bool(tools)
        assert row["messages"][-1]["role"] == "assistant"
        for msg in row["messages"]:
            for call in msg.get("tool_calls", ()):
                assert isinstance(call["function"]["arguments"], dict)  # objects for HF chat templates
        out = render(tokenizer, row)  # every real row renders, and masks right
        check_masks(tokenizer, row, out["input_ids"], out["assistant_masks"])
    assert with_tools > 20


def test_nemo_rl_sft_ends_on_the_assistant(conformance: dict[str, Any]) -> None:
    acc, rows = conformance["sft-nemo-rl"]
    assert len(rows) == acc["written"] > 80
    for row in rows:
        assert set(row) == {"messages", "tools"}
        assert row["messages"][-1]["role"] == "assistant"  # NeMo RL's openai_format loader asserts it
        assert isinstance(row["tools"], list)


def test_openai_sft_rules(conformance: dict[str, Any]) -> None:
    acc, rows = conformance["sft-openai"]
    calls = undeclared = 0
    for row in rows:
        assert set(row) == {"messages", "tools", "parallel_tool_calls"}
        assert row["parallel_tool_calls"] == any(len(m.get("tool_calls") or ()) > 1 for m in row["messages"])
        declared = {t["function"]["name"] for t in row["tools"]}
        called = set()
        for msg in row["messages"]:
            assert ("weight" in msg) == (msg["role"] == "assistant")
            assert msg.get("weight", 0) in (0, 1)
            if msg["role"] == "tool":  # the fine-tuning schema's tool message: no `name`
                assert set(msg) == {"role", "tool_call_id", "content"}
            for call in msg.get("tool_calls", ()):
                assert isinstance(call["function"]["arguments"], str)
                called.add(call["function"]["name"])
                calls += 1
        undeclared += bool(called - declared)
        assert row["messages"][-1]["role"] == "assistant" and row["messages"][-1]["weight"] == 1
    assert calls > 20
    assert acc["export"]["rows_calling_undeclared_tools"] == undeclared > 0  # counted, not silent


def test_sharegpt_rows_alternate(conformance: dict[str, Any]) -> None:
    acc, rows = conformance["sft-sharegpt"]
    assert len(rows) == acc["written"] > 60
    for row in rows:
        turns = [t["from"] for t in row["conversations"]]
        assert len(turns) % 2 == 0
        assert all(
            t in (("human", "observation"), ("gpt", "function_call"))[i % 2] for i, t in enumerate(turns)
        )


@pytest.mark.parametrize("name", ["real", "mirror"])
def test_nemo_rl_dpo_rules(conformance: dict[str, Any], name: str) -> None:
    acc, rows = conformance[f"dpo-nemo-rl-{name}"]
    assert len(rows) == acc["written"]
    for row in rows:
        completions = row["completions"]
        assert len(completions) == 2 and [c["rank"] for c in completions] == [0, 1]
        assert row["chosen_reward"] > row["rejected_reward"]  # ties raise in NeMo RL
        for c in completions:
            assert c["completion"] and c["completion"][-1]["role"] == "assistant"  # only the final one trains
        assert row["context"] and row["context"][-1]["role"] != "assistant"


@pytest.mark.parametrize("name", ["real", "mirror"])
def test_openai_dpo_rules(conformance: dict[str, Any], name: str) -> None:
    acc, rows = conformance[f"dpo-openai-{name}"]
    assert len(rows) == acc["written"] == acc["pairs"] - sum(acc["skipped"].values())
    for row in rows:
        assert set(row) == {"input", "preferred_output", "non_preferred_output"}
        assert set(row["input"]) == {"messages", "tools", "parallel_tool_calls"}
        assert all("name" not in m for m in row["input"]["messages"] if m["role"] == "tool")
        for side in (row["preferred_output"], row["non_preferred_output"]):
            assert len(side) == 1 and side[0]["role"] == "assistant"
            for call in side[0].get("tool_calls", ()):
                assert isinstance(call["function"]["arguments"], str)


def test_trl_dpo_rules(conformance: dict[str, Any]) -> None:
    _, rows = conformance["dpo-trl-mirror"]
    for row in rows:
        assert row["prompt"] and row["chosen"] and row["rejected"]
        assert row["chosen"][-1]["role"] == row["rejected"][-1]["role"] == "assistant"
        assert row["chosen_reward"] - row["rejected_reward"] == row["margin"] >= 0.1
        assert isinstance(row["tools"], str) and isinstance(json.loads(row["tools"]), list)
