"""The tiny offline model: loads with the Auto classes, encodes anything, renders tool-calling chats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast
from trl.chat_template_utils import (
    has_generation_markers,
    is_chat_template_prefix_preserving,
    is_chat_template_stop_token_trained,
    supports_tool_calling,
)

from rollforge.tiny import build_tiny_model

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "reasoning_content": "Look it up.",
        "content": "",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "sunny"},
    {"role": "assistant", "content": "Sunny."},
    {"role": "user", "content": "Thanks!"},
]

EXPECTED = f"""\
<|im_start|>system
Be brief.

# Tools

You may call one or more functions. Their signatures are within <tools></tools>:
<tools>
{json.dumps(TOOLS[0])}
</tools>

For each call, return {{"name": <function-name>, "arguments": <args-json-object>}} within <tool_call></tool_call> tags.<|im_end|>
<|im_start|>user
Weather in Paris?<|im_end|>
<|im_start|>assistant
<think>
Look it up.
</think>

<tool_call>
{{"name": "get_weather", "arguments": {{"city": "Paris"}}}}
</tool_call><|im_end|>
<|im_start|>tool
<tool_response name="get_weather" id="c1">
sunny
</tool_response><|im_end|>
<|im_start|>assistant
Sunny.<|im_end|>
<|im_start|>user
Thanks!<|im_end|>
<|im_start|>assistant
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def assistant_spans(tokenizer: Any, messages: list[dict[str, Any]], **kwargs: Any) -> list[str]:
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True, **kwargs
    )
    spans: list[str] = []
    run: list[int] = []
    for token, masked in [*zip(out["input_ids"], out["assistant_masks"], strict=True), (None, 0)]:
        if masked:
            run.append(token)
        elif run:
            spans.append(tokenizer.decode(run))
            run = []
    return spans


def test_loads_offline_with_auto_classes(tiny: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    ids = tokenizer("Hello there", return_tensors="pt")["input_ids"]
    logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size)
    assert model.config.vocab_size == len(tokenizer)
    assert sum(p.numel() for p in model.parameters()) < 200_000


def test_any_text_round_trips_and_every_loader_agrees(tiny: Path) -> None:
    text = 'Zürich — 東京 🙂 <think>x</think> {"a": [1, 2]}\n\n\ttabs  and  spaces'
    auto = AutoTokenizer.from_pretrained(tiny)
    generic = PreTrainedTokenizerFast.from_pretrained(tiny)
    ids = auto.encode(text)
    assert auto.decode(ids) == text
    assert generic.encode(text) == ids  # the saved tokenizer.json and the class AutoTokenizer rebuilds agree
    # Control and tag tokens are never split by the BPE.
    tokens = auto.convert_ids_to_tokens(auto.encode("<|im_start|>user<think>"))
    assert tokens[0] == "<|im_start|>" and tokens[-1] == "<think>" and "".join(tokens[1:-1]) == "user"


def test_builds_are_seeded(tmp_path: Path) -> None:
    a = build_tiny_model(tmp_path / "a", seed=1)
    b = build_tiny_model(tmp_path / "b", seed=1)
    c = build_tiny_model(tmp_path / "c", seed=2)
    for name in ["model.safetensors", "tokenizer.json", "chat_template.jinja"]:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    weights = [AutoModelForCausalLM.from_pretrained(path).model.embed_tokens.weight for path in (a, c)]
    assert not torch.equal(*weights)


def test_vocab_corpus_makes_its_text_compact(tmp_path: Path) -> None:
    word = "Xylophonequartz"
    plain = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "plain"))
    fitted = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "fitted", vocab_corpus=[word] * 50))
    assert len(fitted.encode(word)) < len(plain.encode(word))


def test_template_renders_tools_reasoning_calls_and_tool_messages(tiny: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    text = tokenizer.apply_chat_template(MESSAGES, tools=TOOLS, tokenize=False, add_generation_prompt=True)
    assert text == EXPECTED


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n",
        ),
        (
            [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n",
        ),
    ],
)
def test_template_without_tools(tiny: Path, messages: list[dict[str, Any]], expected: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    assert tokenizer.apply_chat_template(messages, tools=[], tokenize=False) == expected


def test_string_arguments_are_not_encoded_twice(tiny: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"x": 1}'}}]},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == (
        '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n'
        "</tool_call><|im_end|>\n"
    )


def test_generation_markers_cover_exactly_the_assistant_output(tiny: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    assert assistant_spans(tokenizer, MESSAGES, tools=TOOLS) == [
        '<think>\nLook it up.\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call><|im_end|>",
        "Sunny.<|im_end|>",
    ]
    # The properties TRL checks before trusting a template for assistant-only loss and tool training.
    assert has_generation_markers(tokenizer.chat_template)
    assert is_chat_template_stop_token_trained(tokenizer)
    assert is_chat_template_prefix_preserving(tokenizer)
    assert supports_tool_calling(tokenizer)


def test_variant_without_generation_markers(tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "plain", generation_markers=False))
    marked = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "marked"))
    assert not has_generation_markers(tokenizer.chat_template)
    assert assistant_spans(tokenizer, MESSAGES, tools=TOOLS) == []
    rendered = tokenizer.apply_chat_template(MESSAGES, tools=TOOLS, tokenize=False)
    assert rendered == marked.apply_chat_template(MESSAGES, tools=TOOLS, tokenize=False)
