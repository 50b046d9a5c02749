"""A few SFT rows in the report as the model will see them: rendered by the tokenizer's chat template (with
the loss mask TRL trains with, from the template's generation markers), or shown plainly without one; the
assistant's turns are marked as carrying the loss, the prompt, user and tool turns are not."""

from __future__ import annotations

import json

import pytest

from rollforge.report import compute_report, render_html
from rollforge.report.samples import SAMPLE_ROWS

transformers = pytest.importorskip("transformers")
from rollforge.tiny import build_tiny_model  # noqa: E402  (needs the train extra, skipped above without it)

TOOLS = [
    {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {}}}}
]
CALL = {"id": "c1", "type": "function", "function": {"name": "search", "arguments": {"q": "weather"}}}


def row(task: str, answer: str) -> dict:
    messages = [
        {"role": "user", "content": f"What is the weather in Paris? ({task})"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny, 21 degrees."},
        {"role": "assistant", "content": answer},
    ]
    return {
        "messages": messages,
        "tools": json.dumps(TOOLS),
        "prompt_id": task,
        "reward": 1.0,
        "task_type": task,
    }


ROWS = [row("weather", "It is sunny."), row("weather", "Sunny again."), row("travel", "Take the train."),
        row("food", "Try the bistro."), row("sport", "Go running.")]  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny")))


def loss_text(sample: dict) -> str:
    return "".join(text for text, loss in sample["segments"] if loss)


def context_text(sample: dict) -> str:
    return "".join(text for text, loss in sample["segments"] if not loss)


def test_samples_are_a_few_rows_of_distinct_task_types() -> None:
    data = compute_report(ROWS, None)
    assert [s["task_type"] for s in data.samples] == ["weather", "travel", "food"][:SAMPLE_ROWS]


def test_without_a_tokenizer_the_messages_are_shown_plainly() -> None:
    data = compute_report(ROWS, None)
    assert data.samples_rendered_with.startswith("plain messages (no tokenizer given")
    first = data.samples[0]
    assert "It is sunny." in loss_text(first) and "What is the weather" in context_text(first)
    assert "Sunny, 21 degrees." in context_text(first)  # a tool output carries no loss


def test_with_a_tokenizer_the_template_renders_and_the_mask_is_the_trainers(tiny: str) -> None:
    from transformers import AutoTokenizer

    data = compute_report(ROWS, None, tokenizer=tiny)
    assert data.samples_rendered_with == "the chat template, loss mask from its generation markers"
    first = data.samples[0]
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    encoded = tokenizer.apply_chat_template(
        ROWS[0]["messages"], tools=TOOLS, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    trained = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m]
    assert loss_text(first) == tokenizer.decode(trained)  # exactly the tokens that carry the loss
    assert "It is sunny." in loss_text(first) and '"search"' in loss_text(first)  # the answer and the call
    assert "What is the weather" in context_text(first) and "Sunny, 21 degrees." in context_text(first)
    assert "<|im_start|>user" in context_text(first)  # the template's own markers, as the model reads them


def test_the_page_shows_them_highlighted(tiny: str) -> None:
    page = render_html(compute_report(ROWS, None, tokenizer=tiny))
    assert "Sample rows as the model sees them" in page
    assert '<span class="loss">' in page and "It is sunny." in page
