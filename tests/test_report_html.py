"""The HTML page and the terminal summary: self-contained, escaped, and showing ReportData's own numbers."""

from __future__ import annotations

import os
import re

import pytest
from markupsafe import escape
from rich.console import Console

from rollforge.report import compute_report, render_html, render_terminal, write_report
from rollforge.report.fmt import count, num, pct
from rollforge.report.tokens import ESTIMATE_LABEL
from rollforge.stats import reward_stats

HOSTILE = '<script>alert("x")</script>'


def row(task: str, answer: str, reward: float, prompt: str) -> dict:
    return {
        "messages": [
            {"role": "user", "content": f"question {prompt}"},
            {"role": "assistant", "content": answer},
        ],
        "tools": "[]",
        "prompt_id": prompt,
        "reward": reward,
        "task_type": task,
    }


SFT = [
    ("train", row(HOSTILE, "a", 1.0, "p1")),
    ("train", row("math", "b", 0.5, "p2")),
    ("validation", row("math", "b", 0.0, "p3")),
]
DPO = [
    ("train", {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "good"}],
               "rejected": [{"role": "assistant", "content": "bad"}], "tools": "[]", "chosen_reward": 1.0,
               "rejected_reward": 0.0, "margin": 1.0, "prompt_id": "p1"}),
]  # fmt: skip
MANIFEST = {
    "rollforge_version": "0.1.0",
    "created_at": "2026-01-02T03:04:05+00:00",
    "git_commit": "abc123",
    "seed": 0,
    "future_key": {"unknown": True},
    "inventory": {"reward": reward_stats([0.0, 0.25, 1.0, 1.0])},
    "accounting": {
        "lines": 1234,
        "rollouts": 1200,
        "rejected": {"invalid_json": 34},
        "sft": {"written": 3, "train": 2, "validation": 1, "filtered": {"below_min_reward": 1197}},
        "dpo": {
            "prompts": 300,
            "pairs": 1,
            "train": 1,
            "validation": 0,
            "unpaired": {"all_equal_rewards": 299},
        },
        "sample": {"rows": 50},
    },
}


@pytest.fixture(scope="module")
def data():
    return compute_report(SFT, DPO, splits={"train": "sft/train.jsonl", "validation": "sft/validation.jsonl"},
                          manifest=MANIFEST, max_tokens=4096)  # fmt: skip


@pytest.fixture(scope="module")
def page(data):
    return render_html(data)


def test_page_is_self_contained(page):
    assert "data:image/png;base64," in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page  # inline CSS only, no scripts at all


def test_hostile_task_type_is_escaped(page):
    assert HOSTILE not in page
    assert str(escape(HOSTILE)) in page  # in the task table and the chart's neighbour text


def test_numbers_on_the_page_are_reportdata_numbers(data, page):
    s = data.summary()
    for value in (count(data.sft.rows), count(data.dpo.pairs), count(data.prompts)):
        assert f'<div class="v">{value}</div>' in page
    assert f"{data.task_entropy:.3f}" in page
    assert pct(s["sft"]["duplicate_rate"]) in page and data.sft.duplicates == 1
    assert pct(s["sft"]["reasoning_rate"]) in page
    reward = s["sft"]["reward"]
    assert f'<td class="n">{num(reward["mean"])}</td>' in page
    for check in data.checks:
        assert str(escape(check.detail)) in page and str(escape(check.threshold)) in page
    assert ESTIMATE_LABEL in page


def test_size_section_shows_the_manifest_accounting(data, page):
    assert data.accounting == MANIFEST["accounting"]
    for label, value in [("input lines", "1,234"), ("rollouts read", "1,200"), ("invalid_json", "34"),
                         ("below_min_reward", "1,197"), ("all_equal_rewards", "299"), ("review sample rows", "50")]:  # fmt: skip
        assert re.search(rf"<td[^>]*>{label}</td><td class=\"n\">{value}</td>", page), label
    assert "commit <code>abc123</code>" in page
    # The reward table adds the inputs' own reward statistics from the manifest's inventory.
    cells = "".join(
        f'<td class="n">{v}</td>' for v in ["4", "0", "0.075", "0.1875", "0.625", "1", "1", "1", "0.5625"]
    )
    assert f"<td>all input rollouts (manifest inventory)</td>{cells}" in page
    assert {c.name: c.status for c in data.checks}["manifest"] == "pass"


def test_checklist_marks(data, page):
    marks = {c.name: c.status for c in data.checks}
    assert marks["size"] == "warn" and marks["validation"] == "warn"  # 3 rows; DPO has no validation pair
    assert page.count("! warn") == sum(1 for s in marks.values() if s == "warn")
    assert page.count("✓ pass") == sum(1 for s in marks.values() if s == "pass")


def test_write_report_is_atomic(tmp_path, data):
    path = tmp_path / "out" / "report.html"
    write_report(data, path)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert os.listdir(path.parent) == ["report.html"]


def test_empty_report_renders():
    empty = compute_report(None, None)
    page = render_html(empty)
    assert "No DPO pairs in these inputs." in page and "data:image/png" not in page


def test_terminal_summary(data):
    console = Console(record=True, width=160)
    render_terminal(data, console)
    text = console.export_text()
    assert "pre-training checklist" in text and "Dataset size" in text
    for warning in data.warnings:
        assert warning.split(":")[0] in text
    assert f"{count(data.sft.rows_by_split['train'])} SFT rows" in text


def test_terminal_prints_markup_in_data_as_text():
    data = compute_report([row("[red]boom[/red]", "a", 1.0, "p1")], None)
    console = Console(record=True, width=160)
    render_terminal(data, console)
    assert "'[red]boom[/red]'" in console.export_text()  # not swallowed as rich markup


def test_odd_and_many_task_types_render():
    """ "$" must not start matplotlib mathtext; past 15 task types the chart sums the rest into "other"."""
    rows = [row(f"$x^{i}$ \\frac{{", "a", 1.0, f"p{i}") for i in range(20)]
    data = compute_report(rows, None)
    assert len(data.task_types) == 20
    assert render_html(data).count("data:image/png;base64,") >= 4
