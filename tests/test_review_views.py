"""The review app's views in-process: readable tool outputs, hidden reasoning marked, informative list rows,
the way back to the list, the next unlabelled one, and any string rendered (lone surrogates included)."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

from rollforge.decode import LineDecoder
from rollforge.labels import LabelStore
from rollforge.review.app import create_app
from rollforge.review.index import RolloutIndex
from rollforge.review.render import readable
from rollforge.review.security import Guard
from rollforge.rollout import Rollout
from tests.test_review_fixtures import FORECAST, surrogate_row, view_rows, write_rows

BASE = "http://127.0.0.1:8765"


def client_for(paths: list[str], db: Path) -> tuple[TestClient, RolloutIndex]:
    index = RolloutIndex.load(paths)
    app = create_app(index, LabelStore(db), "tester", Guard(8765))
    return TestClient(app, base_url=BASE, follow_redirects=False), index


@pytest.fixture
def views(tmp_path: Path) -> tuple[TestClient, RolloutIndex]:
    return client_for([str(write_rows(tmp_path / "views.jsonl", view_rows()))], tmp_path / "r.sqlite")


def blocks(html: str) -> list[str]:
    """The text of every text block of a page, unescaped (what the reader sees)."""
    return [unescape(b) for b in re.findall(r'<div class="(?:text|args|json)">(.*?)</div>', html, re.DOTALL)]


@pytest.mark.parametrize(
    ("text", "shown", "how"),
    [
        ('{"a":1}', '{\n  "a": 1\n}', "JSON, indented"),
        (json.dumps(json.dumps({"a": [1]})), '{\n  "a": [\n    1\n  ]\n}', "JSON string, decoded"),
        (json.dumps("two\nlines"), "two\nlines", "JSON string, decoded"),
        (json.dumps(json.dumps(json.dumps("deep"))), "deep", "JSON string, decoded"),
        ('"quoted" then text', '"quoted" then text', None),
        ("[1, 2", "[1, 2", None),
        ("plain words", "plain words", None),
        ("[" * 5000 + "]" * 5000, "[" * 5000 + "]" * 5000, None),  # too deep to indent: as it is
    ],
)
def test_readable_decodes_and_indents_json(text: str, shown: str, how: str | None) -> None:
    result = readable(text)
    assert (result.text, result.how) == (shown, how)


def test_tool_outputs_that_are_json_strings_are_decoded(views: tuple[TestClient, RolloutIndex]) -> None:
    client, index = views
    rid = index.entries[0].id
    html = client.get(f"/r/{rid}").text
    texts = blocks(html)
    assert json.dumps(FORECAST, indent=2) in texts  # the object encoded twice, indented
    assert "AQI 31 (good)\nPM2.5 7" in texts  # a plain text encoded once, with its line break
    assert '{\n  "city": "Lyon"\n}' in texts  # arguments encoded twice
    assert not any('\\"' in t for t in texts)  # no escaped quotes left anywhere
    assert html.count('<span class="how"') == 3 and "arguments: JSON string, decoded" in html
    assert client.get(f"/r/{rid}/full/m2.c").text == json.dumps(FORECAST, indent=2)  # "show all" agrees


def test_real_json_tool_outputs_are_indented(shared_rollouts: Path, tmp_path: Path) -> None:
    client, index = client_for(
        [str(shared_rollouts / "resources_servers_math_with_code.jsonl")], tmp_path / "db"
    )
    html = client.get(f"/r/{index.entries[0].id}").text
    assert '{\n  "stdout": ' in "\n".join(blocks(html))
    assert (
        '<span class="how" title="shown decoded and indented; the full text link gives the same">JSON, indented'
        in html
    )


def _rollouts(path: Path) -> list[Rollout]:
    decoder = LineDecoder(arguments="string")
    lines = path.read_bytes().splitlines()
    records = [decoder.parse(line, str(path), n + 1) for n, line in enumerate(lines)]
    assert all(isinstance(r, Rollout) for r in records)
    return records  # type: ignore[return-value]


def test_conversion_keeps_where_reasoning_was_hidden(tmp_path: Path) -> None:
    with_tools, alone = _rollouts(write_rows(tmp_path / "v.jsonl", view_rows()))
    assert with_tools.hidden_reasoning == ((1, "encrypted"), (3, "encrypted"), (5, "hidden"))
    assert [with_tools.messages[i]["role"] for i, _ in with_tools.hidden_reasoning] == ["assistant"] * 3
    # a turn of reasoning alone is marked before the message after it; the last one past the end
    assert alone.hidden_reasoning == ((3, "encrypted"), (6, "hidden"))
    assert len(alone.messages) == 6 and alone.messages[3] == {"role": "user", "content": "Hello?"}
    assert alone.facts["reasoning_encrypted"] == 1 and alone.facts["reasoning_hidden"] == 1


def test_hidden_reasoning_is_marked_on_the_page(views: tuple[TestClient, RolloutIndex]) -> None:
    client, index = views
    with_tools = client.get(f"/r/{index.entries[0].id}").text
    marks = re.findall(r'data-hidden-reasoning="(\w+)"', with_tools)
    assert marks == ["encrypted", "encrypted", "hidden"]
    assert "its reasoning came back encrypted" in with_tools
    alone = client.get(f"/r/{index.entries[1].id}").text
    assert re.findall(r'data-hidden-reasoning="(\w+)"', alone) == ["encrypted", "hidden"]
    assert alone.count("a turn of reasoning alone") == 2
    assert alone.index("a turn of reasoning alone") < alone.index("Hello?")


def test_real_hidden_reasoning_is_marked(shared_rollouts: Path, tmp_path: Path) -> None:
    """GPT-5 rollouts reason without returning the text: each turn shows the marker."""
    path = shared_rollouts / "resources_servers_math_with_judge.jsonl"
    client, index = client_for([str(path)], tmp_path / "db")
    assert len(index) == 5
    for entry in index.entries:
        assert 'data-hidden-reasoning="hidden"' in client.get(f"/r/{entry.id}").text


def test_example_encrypted_reasoning_is_marked(examples_dir: Path, tmp_path: Path) -> None:
    client, index = client_for([str(examples_dir / "math_reasoning.jsonl")], tmp_path / "db")
    marked = [e for e in index.entries if index.load_rollout(e).facts.get("reasoning_encrypted")]
    assert len(marked) > 10
    for entry in marked:
        assert 'data-hidden-reasoning="encrypted"' in client.get(f"/r/{entry.id}").text


def _row(html: str, rid: str) -> str:
    match = re.search(rf'<tr>\s*<td class="muted num">\d+</td>\s*<td class="prompt-cell">'
                      rf'<a class="row-link" data-row href="/r/{rid}[^"]*".*?</tr>', html, re.DOTALL)  # fmt: skip
    assert match, rid
    return match.group(0)


def _cells(row: str) -> list[str]:
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
    return [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


def _text(content: object) -> str:
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return content if isinstance(content, str) else ""


def test_list_rows_show_prompt_turns_calls_and_length(shared_rollouts: Path, tmp_path: Path) -> None:
    client, index = client_for([str(shared_rollouts)], tmp_path / "db")
    html = client.get("/").text
    for entry in index.entries[:50]:
        rollout = index.load_rollout(entry)
        completion = rollout.completion
        users = [m for m in rollout.prompt if m["role"] == "user"]
        text = " ".join(_text((users or rollout.prompt)[-1]["content"]).split())
        cells = _cells(_row(html, entry.id))
        shown = cells[1].split("\n")[0].strip()
        assert text.startswith(shown.rstrip("…").rstrip()) and len(shown) <= 110, (shown, text[:120])
        turns = sum(m["role"] == "assistant" for m in completion)
        calls = sum(len(m.get("tool_calls") or ()) for m in completion)
        chars = sum(
            len(m.get("reasoning_content") or "")
            + len(_text(m.get("content")))
            + sum(
                len(c["function"]["name"]) + len(c["function"]["arguments"])
                for c in m.get("tool_calls") or ()
            )
            for m in completion
        )
        assert cells[2:7] == [entry.task_type, f"{entry.reward:.4g}", str(turns), str(calls), f"{chars:,}"]


def test_back_to_the_list_keeps_page_filter_and_row(examples_dir: Path, tmp_path: Path) -> None:
    client, index = client_for([str(examples_dir)], tmp_path / "db")
    math = [e.id for e in index.entries if e.task_type == "math"]
    assert len(math) > 100
    html = client.get(f"/r/{math[120]}?task=math").text
    assert f'href="/?task=math&amp;page=3#at-{math[120]}" data-key="u"' in html
    page3 = client.get("/?task=math&page=3").text
    assert f'href="/r/{math[120]}?task=math"' in page3  # the row is on that page


def test_next_unlabelled_skips_labelled_and_wraps(tmp_path: Path) -> None:
    paths = [
        write_rows(tmp_path / "a.jsonl", view_rows()),
        write_rows(tmp_path / "b.jsonl", [surrogate_row()]),
    ]
    client, index = client_for([str(p) for p in paths], tmp_path / "n.db")
    a, b, c = (e.id for e in index.entries)
    store = LabelStore(tmp_path / "n.db")
    assert client.get("/next").headers["location"] == f"/r/{a}"
    store.set_label(b, "accept", "", "t")
    assert client.get(f"/next?after={a}").headers["location"] == f"/r/{c}"  # b is labelled
    assert client.get(f"/next?after={c}&status=flag").headers["location"] == f"/r/{a}?status=flag"  # wraps
    html = client.get(f"/r/{a}?task=views").text
    assert f'href="/next?task=views&amp;after={a}" data-key="N"' in html
    assert client.get(f"/next?task=views&after={a}").headers["location"] == f"/r/{a}?task=views"  # only one
    store.set_label(a, "reject", "", "t")
    store.set_label(c, "flag", "", "t")
    done = client.get(f"/next?after={a}&task=views")
    assert done.headers["location"] == "/?task=views&status=unlabelled"
    assert "All reviewed." in client.get(done.headers["location"]).text


def test_lone_surrogates_render(tmp_path: Path) -> None:
    """Issue 14: a lone surrogate in tool arguments made the conversation page answer HTTP 500."""
    client, index = client_for([str(write_rows(tmp_path / "s.jsonl", [surrogate_row()]))], tmp_path / "db")
    assert len(index) == 1
    rid = index.entries[0].id
    page = client.get(f"/r/{rid}")
    assert page.status_code == 200
    texts = blocks(page.text)
    assert '{\n  "q": "\\ud800 lone high",\n  "k": "\\udfff"\n}' in texts  # shown as its escape
    assert '{\n  "found": "\\udc00 lone low"\n}' in texts
    assert "\\ud83d half an emoji" in texts
    for key in ("m1.a0", "m2.c", "m4.c"):
        full = client.get(f"/r/{rid}/full/{key}")
        assert full.status_code == 200 and "\\ud" in full.text, key
    assert client.get("/").status_code == 200
