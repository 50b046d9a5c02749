"""Token counts from a real tokenizer: its chat template, a plain-text fallback, and rows it cannot render."""

from __future__ import annotations

import json
import shutil

import pytest

from rollforge.errors import RollforgeError
from rollforge.report import compute_report, render_html
from rollforge.report.tokens import TokenizerCounter

transformers = pytest.importorskip("transformers")
from rollforge.tiny import build_tiny_model  # noqa: E402  (needs the train extra, skipped above without it)

TOOLS = [
    {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {}}}}
]
CALL = {"id": "c1", "type": "function", "function": {"name": "search", "arguments": {"q": "weather"}}}
MESSAGES = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": "", "reasoning_content": "I should search.", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "c1", "content": "Sunny, 21 degrees."},
    {"role": "assistant", "content": "It is sunny."},
]
ROW = {
    "messages": MESSAGES,
    "tools": json.dumps(TOOLS),
    "prompt_id": "p",
    "reward": 1.0,
    "task_type": "weather",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def no_template(tiny, tmp_path_factory):
    """The tiny tokenizer with its chat template removed."""
    out = tmp_path_factory.mktemp("plain")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{tiny}/{name}", out / name)
    config = json.loads((out / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (out / "tokenizer_config.json").write_text(json.dumps(config))
    return str(out)


def test_chat_template_token_counts(tiny):
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny)
    expected = len(tokenizer.apply_chat_template(MESSAGES, tools=TOOLS, tokenize=True, return_dict=False))
    data = compute_report([ROW], None, tokenizer=tiny, max_tokens=expected - 1)
    assert list(data.sft.tokens) == [expected]
    assert data.tokens.method == "chat_template" and "chat template" in data.tokens.label
    assert data.sft.over_max == 1
    assert {c.name: c.status for c in data.checks}["template"] == "pass"
    assert data.tokens.label in render_html(data) and "estimated" not in data.tokens.label


def test_plain_text_fallback_says_so(no_template):
    counter = TokenizerCounter(no_template)
    assert counter.method == "plain_text" and "no chat template" in counter.label
    texts = [
        "What is the weather in Paris?",
        'I should search.search{"q":"weather"}',
        "Sunny, 21 degrees.",
        "It is sunny.",
    ]
    encode = counter.tokenizer.encode
    assert counter.count(MESSAGES, []) == len(encode("\n".join(texts), add_special_tokens=False))
    tools = json.dumps(TOOLS)
    assert counter.count(MESSAGES, tools) == len(encode("\n".join([*texts, tools]), add_special_tokens=False))


def test_rows_the_template_cannot_render_are_counted(tiny):
    broken = {**ROW, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "", "tool_calls": [{"id": "x", "function": {"arguments": {}}}]}]}  # fmt: skip
    data = compute_report([ROW, broken], None, tokenizer=tiny)
    assert data.tokens.template_errors == 1
    assert {c.name: c.status for c in data.checks}["template"] == "warn"


def test_missing_tokenizer_directory(tmp_path):
    with pytest.raises(RollforgeError, match="no tokenizer directory"):
        compute_report([ROW], None, tokenizer=str(tmp_path / "nope"))
