"""compute_report on small hand-written rows: every number checked exactly."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from rollforge.errors import RollforgeError
from rollforge.report import compute_report
from rollforge.report.metrics import normalised_entropy
from rollforge.report.tokens import ESTIMATE_LABEL, estimate_tokens

TOOLS = '[{"type":"function","function":{"name":"search","parameters":{}}}]'


def tool_row(call_id: str, reward: float) -> dict[str, Any]:
    """system + user + (tool call, tool result, answer): a tool-using row with reasoning on the answer."""
    call = {"id": call_id, "type": "function", "function": {"name": "search", "arguments": {"q": "x"}}}
    return {
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "content": "result"},
            {"role": "assistant", "content": "A1", "reasoning_content": "think"},
        ],
        "tools": TOOLS,
        "prompt_id": "p1",
        "rollout_id": f"r-{call_id}",
        "reward": reward,
        "task_type": "math",
    }


def chat_row(question: str, answer: str, reward: float, task: str, prompt: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "tools": "[]",
        "prompt_id": prompt,
        "rollout_id": f"r-{question}",
        "reward": reward,
        "task_type": task,
    }


# A and B give the same answer (tool-call ids differ: still a duplicate); D holds inline reasoning and
# shares prompt p1 with the train split.
SFT = [
    ("train", tool_row("c1", 1.0)),
    ("train", tool_row("c2", 0.5)),
    ("train", chat_row("Q2", "A2", 0.0, "email", "p2")),
    ("validation", chat_row("Q3", "<think>hmm</think>A3", 0.75, "crm", "p1")),
]
# Characters of tool_row: "sys" 3 + "Q1" 2 + call name "search" 6 + '{"q":"x"}' 9 + "result" 6 + "think" 5
# + "A1" 2 = 33, plus the tools JSON.
TOOL_ROW_CHARS = 33 + len(TOOLS)


def pair(
    prompt_id: str, chosen: tuple[str, float], rejected: tuple[str, float], margin: float | None
) -> dict:
    row = {
        "prompt": [{"role": "user", "content": "Q"}],
        "chosen": [{"role": "assistant", "content": chosen[0]}],
        "rejected": [{"role": "assistant", "content": rejected[0]}],
        "tools": "[]",
        "chosen_reward": chosen[1],
        "rejected_reward": rejected[1],
        "prompt_id": prompt_id,
    }
    if margin is not None:
        row["margin"] = margin
    return row


DPO = [
    ("train", pair("p1", ("good", 1.0), ("bad answer", 0.0), 1.0)),  # tokens: ceil(5/4)=2 vs ceil(11/4)=3
    ("train", pair("p1", ("a much longer answer", 0.75), ("no", 0.5), 0.25)),  # 6 vs 1
    ("validation", pair("p3", ("yes", 0.625), ("nope", 0.5), None)),  # margin derived: 0.125; 1 vs 2
    ("validation", pair("p4", ("same", 0.5), ("tied", 0.5), 0.0)),  # not preferred; 2 vs 2
]


@pytest.fixture(scope="module")
def data():
    return compute_report(iter(SFT), iter(DPO), splits={"train": "t", "validation": "v"}, max_tokens=24)


def test_sizes_and_splits(data):
    assert dict(data.sft.rows_by_split) == {"train": 3, "validation": 1}
    assert dict(data.dpo.pairs_by_split) == {"train": 2, "validation": 2}
    assert data.prompts == 4  # p1, p2 (SFT), p3, p4 (DPO)
    assert data.shared_prompts == 1  # p1: SFT rows and a DPO pair in train, an SFT row in validation
    assert data.split_names() == ["train", "validation"]


def test_sft_rates_and_duplicates(data):
    s = data.summary()["sft"]
    assert (data.sft.tool_rows, data.sft.declared_rows, data.sft.declared_tool_rows) == (2, 2, 2)
    assert s["tool_use_rate"] == 0.5 and s["tool_use_rate_where_declared"] == 1.0
    assert data.sft.reasoning_rows == 3 and s["reasoning_rate"] == 0.75  # two reasoning_content, one </think>
    assert s["duplicates"] == 1 and s["duplicate_rate"] == 0.25
    assert s["truncated"] is None  # released rows do not say


def test_sft_distributions(data):
    s = data.summary()["sft"]
    assert list(data.sft.messages) == [5, 5, 2, 2]
    assert list(data.sft.turns) == [2, 2, 1, 1]
    assert (
        s["reward"]["mean"] == 0.5625
        and s["reward"]["min"] == 0.0
        and s["reward"]["quantiles"]["p50"] == 0.625
    )
    assert s["messages"]["mean"] == 3.5


def test_token_estimate_is_chars_over_four(data):
    assert data.tokens.method == "estimate" and data.tokens.label == ESTIMATE_LABEL
    assert list(data.sft.tokens) == [math.ceil(TOOL_ROW_CHARS / 4)] * 2 + [
        1,
        math.ceil(len("Q3<think>hmm</think>A3") / 4),
    ]
    assert (
        estimate_tokens(
            [{"role": "user", "content": [{"type": "text", "text": "abcde"}, {"type": "image_url"}]}], None
        )
        == 2
    )
    assert TOOL_ROW_CHARS == 99  # so a tool row estimates to 25 tokens
    assert data.sft.over_max == 2 and data.dpo.over_max == 0  # the two tool rows: 25 > --max-tokens 24


def test_task_diversity(data):
    assert data.task_types == {"math": 2, "email": 1, "crm": 1}
    assert data.task_entropy == pytest.approx(1.5 * math.log(2) / math.log(3), abs=1e-12)
    assert data.largest_task == ("math", 0.5)


def test_entropy_edges():
    assert normalised_entropy({}) == 0.0
    assert normalised_entropy({"a": 7}) == 0.0
    assert normalised_entropy({"a": 3, "b": 3, "c": 3}) == pytest.approx(1.0)
    assert normalised_entropy({"a": 1, "b": 0}) == 0.0


def test_dpo_numbers(data):
    d = data.summary()["dpo"]
    assert list(data.dpo.margins) == [1.0, 0.25, 0.125, 0.0]
    assert d["margin"]["min"] == 0.0 and d["margin"]["max"] == 1.0 and d["margin"]["mean"] == 0.34375
    assert d["margin"]["quantiles"]["p50"] == 0.1875
    assert d["pairs_per_prompt"] == {1: 2, 2: 1} and d["prompts"] == 3
    assert d["not_preferred"] == 1
    assert list(data.dpo.chosen_tokens) == [2, 6, 1, 2] and list(data.dpo.rejected_tokens) == [3, 1, 2, 2]
    assert d["chosen_longer_rate"] == 0.25
    assert d["chosen_reward"]["mean"] == 0.71875 and d["rejected_reward"]["mean"] == 0.375


def test_rows_without_split_or_optional_fields():
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    data = compute_report([row, row], None)
    assert dict(data.sft.rows_by_split) == {"all": 2}
    assert data.summary()["sft"]["rows_without_reward"] == 2
    assert data.task_types == {"unknown": 2}
    assert data.prompts == 1  # no prompt_id: the prompt's own hash groups the two
    assert data.sft.duplicates == 1
    assert {c.name: c.status for c in data.checks}["validation"] == "n/a"


def test_bad_rows_raise_a_clean_error():
    with pytest.raises(RollforgeError, match="JSON object"):
        compute_report(["not a row"], None)  # type: ignore[list-item]
    with pytest.raises(RollforgeError, match="tools"):
        compute_report([{"messages": [], "tools": "{not json"}], None)


def test_summary_is_json_serialisable(data):
    summary = orjson.loads(orjson.dumps(data.summary(), option=orjson.OPT_NON_STR_KEYS))
    assert summary["size"]["sft_rows"] == {"train": 3, "validation": 1}
    assert [c["name"] for c in summary["checks"]][:4] == ["size", "rewards", "length", "diversity"]
