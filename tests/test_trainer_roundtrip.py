"""rollforge's SFT/DPO rows go through the real TRL trainers: loaded with datasets, trained, masked right."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from datasets import load_dataset
from transformers import AutoTokenizer
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

from rollforge.tiny import build_tiny_model

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the web",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    },
]


def call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# Multi-step tool use: reasoning + a call, its output, reasoning + a parallel pair of calls, their outputs, answer.
TOOL_CONVERSATION = [
    {"role": "system", "content": "You are a weather assistant."},
    {"role": "user", "content": "PROMPT_WEATHER: is it warmer in Paris or in Rome?"},
    {
        "role": "assistant",
        "reasoning_content": "REASONING_FIRST I should look up Paris.",
        "content": "",
        "tool_calls": [call("call_1", "get_weather", {"city": "Paris", "unit": "c"})],
    },
    {
        "role": "tool",
        "tool_call_id": "call_1",
        "name": "get_weather",
        "content": "TOOL_OUTPUT_PARIS 18 degrees",
    },
    {
        "role": "assistant",
        "reasoning_content": "REASONING_SECOND Now Rome, and a search in parallel.",
        "content": "Checking Rome.",
        "tool_calls": [
            call("call_2", "get_weather", {"city": "Rome"}),
            call("call_3", "search", {"query": "Rome heatwave"}),
        ],
    },
    {
        "role": "tool",
        "tool_call_id": "call_2",
        "name": "get_weather",
        "content": "TOOL_OUTPUT_ROME 25 degrees",
    },
    {"role": "tool", "tool_call_id": "call_3", "name": "search", "content": "TOOL_OUTPUT_SEARCH no heatwave"},
    {"role": "assistant", "content": "FINAL_ANSWER Rome is warmer."},
]

# A multi-turn environment (blackjack): the environment speaks as `user` between the assistant's moves.
GAME_CONVERSATION = [
    {"role": "user", "content": "PROMPT_GAME You have 10 and 6. Hit or stand?"},
    {"role": "assistant", "content": "MOVE_HIT hit"},
    {"role": "user", "content": "ENV_TURN You drew 3: total 19. Hit or stand?"},
    {"role": "assistant", "reasoning_content": "REASONING_GAME 19 is high.", "content": "MOVE_STAND stand"},
]


def sft_row(messages: list[dict[str, Any]], tools: list[dict[str, Any]], rollout_id: str) -> dict[str, Any]:
    return {
        "messages": messages,
        "tools": json.dumps(tools),
        "prompt_id": f"p-{rollout_id}",
        "rollout_id": rollout_id,
        "reward": 1.0,
        "task_type": "tools" if tools else "game",
    }


SFT_ROWS = [sft_row(TOOL_CONVERSATION, TOOLS, "r1"), sft_row(GAME_CONVERSATION, [], "r2")]

DPO_ROWS = [
    {
        "prompt": TOOL_CONVERSATION[:2],
        "chosen": [*TOOL_CONVERSATION[2:4], {"role": "assistant", "content": "CHOSEN_ANSWER Paris is 18."}],
        "rejected": [{"role": "assistant", "content": "REJECTED_ANSWER I cannot know."}],
        "tools": json.dumps(TOOLS),
        "chosen_reward": 1.0,
        "rejected_reward": 0.0,
        "margin": 1.0,
        "prompt_id": "p-r1",
    },
    {
        "prompt": GAME_CONVERSATION[:1],
        "chosen": [GAME_CONVERSATION[1], GAME_CONVERSATION[2], GAME_CONVERSATION[3]],
        "rejected": [{"role": "assistant", "content": "REJECTED_MOVE stand on 16"}],
        "tools": "[]",
        "chosen_reward": 1.0,
        "rejected_reward": -1.0,
        "margin": 2.0,
        "prompt_id": "p-r2",
    },
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = [json.dumps(row) for row in SFT_ROWS + DPO_ROWS]
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), vocab_corpus=corpus)


def masked_spans(tokenizer: Any, input_ids: list[int], labels: list[int]) -> tuple[list[str], list[str]]:
    """Decoded runs of trained tokens (label != -100) and of context tokens."""
    trained: list[str] = []
    context: list[str] = []
    run: list[int] = []
    for i, (token, label) in enumerate(zip(input_ids, labels, strict=True)):
        run.append(token)
        last = i == len(input_ids) - 1
        if last or (labels[i + 1] != -100) != (label != -100):
            (trained if label != -100 else context).append(tokenizer.decode(run))
            run = []
    return trained, context


def test_sft_rows_load_with_datasets_unchanged(tmp_path: Path) -> None:
    # Tool-call arguments with different keys must not be None-padded into one struct by Arrow.
    data = load_dataset("json", data_files=str(write_jsonl(tmp_path / "sft.jsonl", SFT_ROWS)), split="train")
    assert data[0]["messages"] == TOOL_CONVERSATION
    assert json.loads(data[0]["tools"]) == TOOLS
    assert data[1]["messages"][2] == {"role": "user", "content": GAME_CONVERSATION[2]["content"]}


def test_sft_assistant_only_loss_trains_only_the_assistant(tiny: Path, tmp_path: Path) -> None:
    data = load_dataset("json", data_files=str(write_jsonl(tmp_path / "sft.jsonl", SFT_ROWS)), split="train")
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    config = SFTConfig(
        output_dir=str(tmp_path / "out"),
        assistant_only_loss=True,
        max_steps=3,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        bf16=False,
        report_to="none",
    )
    trainer = SFTTrainer(model=str(tiny), args=config, train_dataset=data, processing_class=tokenizer)
    processed = trainer.train_dataset

    # The JSON-string `tools` column is decoded by TRL: tokens equal a direct render with the list.
    expected = tokenizer.apply_chat_template(TOOL_CONVERSATION, tools=TOOLS, tokenize=True, return_dict=True)
    assert processed[0]["input_ids"] == expected["input_ids"]

    trained, context = masked_spans(tokenizer, processed[0]["input_ids"], processed[0]["labels"])
    trained_text, context_text = "".join(trained), "".join(context)
    for text in [
        "<think>\nREASONING_FIRST",
        "REASONING_SECOND",
        '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}',
        '{"name": "get_weather", "arguments": {"city": "Rome"}}',  # both calls of the parallel pair
        '{"name": "search", "arguments": {"query": "Rome heatwave"}}',
        "Checking Rome.",
        "FINAL_ANSWER",
    ]:
        assert text in trained_text
    for text in [
        "# Tools",
        "PROMPT_WEATHER",
        '<tool_response name="get_weather" id="call_1">\nTOOL_OUTPUT_PARIS',
        "TOOL_OUTPUT_ROME",
        '<tool_response name="search" id="call_3">\nTOOL_OUTPUT_SEARCH',
    ]:
        assert text in context_text
        assert text not in trained_text
    assert all(span.endswith("<|im_end|>") for span in trained)  # the model learns to stop each turn
    assert len(trained) == 3

    trained, context = masked_spans(tokenizer, processed[1]["input_ids"], processed[1]["labels"])
    assert trained == [
        "MOVE_HIT hit<|im_end|>",
        "<think>\nREASONING_GAME 19 is high.\n</think>\n\nMOVE_STAND stand<|im_end|>",
    ]
    assert "ENV_TURN" in "".join(context) and "PROMPT_GAME" in "".join(context)

    output = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    assert output.global_step == 3


def test_dpo_trains_on_rollforge_pairs(tiny: Path, tmp_path: Path) -> None:
    data = load_dataset("json", data_files=str(write_jsonl(tmp_path / "dpo.jsonl", DPO_ROWS)), split="train")
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    config = DPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=3,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        bf16=False,
        report_to="none",
    )
    trainer = DPOTrainer(model=str(tiny), args=config, train_dataset=data, processing_class=tokenizer)
    row = trainer.train_dataset[0]
    prompt = tokenizer.decode(row["prompt_ids"])
    assert prompt.endswith(
        "PROMPT_WEATHER: is it warmer in Paris or in Rome?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert '"name": "search"' in prompt  # tools rendered into the system turn
    chosen = tokenizer.decode(row["chosen_ids"])
    # DPO puts every token after the prompt in the loss, the tool output included (TRL's documented behaviour).
    assert chosen.startswith("<think>\nREASONING_FIRST") and "TOOL_OUTPUT_PARIS" in chosen
    assert chosen.endswith("CHOSEN_ANSWER Paris is 18.<|im_end|>\n")
    assert tokenizer.decode(row["rejected_ids"]) == "REJECTED_ANSWER I cannot know.<|im_end|>\n"

    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 3
    assert all(math.isfinite(entry["loss"]) and "rewards/margins" in entry for entry in logs)
    assert logs[-1]["rewards/margins"] > 0  # a few steps at a high learning rate already prefer chosen
