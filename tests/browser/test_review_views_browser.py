"""The review app's views in a real browser: back to the list where the reviewer was, N for the next unlabelled
one, DPO pairs side by side, readable tool outputs, hidden reasoning marked, lone surrogates shown."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollforge.cli.main import main
from rollforge.labels import LabelStore, load_labels
from rollforge.review.index import RolloutIndex
from rollforge.review.pairs import PairIndex, pair_sources
from tests.browser.review_browser_support import Servers, current_id, press_and_wait
from tests.test_review_fixtures import FORECAST, surrogate_row, view_rows, write_rows

NewPage = Callable[[], Any]


def focused_row(page: Any) -> str | None:
    """The id of the list row that has the keyboard focus, if it is in view."""
    return page.evaluate("""() => {
        const a = document.activeElement;
        if (!a || !a.matches("a[data-row]")) return null;
        const box = a.getBoundingClientRect();
        return box.top >= 0 && box.bottom <= window.innerHeight ? a.getAttribute("data-id") : "out of view";
    }""")


def test_back_to_the_list_lands_on_the_row(
    new_page: NewPage, servers: Servers, corpus: Path, tmp_path: Path
) -> None:
    url = servers.start(str(corpus / "example"), "--db", str(tmp_path / "r.sqlite"))
    page = new_page()
    page.goto(url + "?page=2")
    rows = page.locator("a[data-row]")
    third = rows.nth(2).get_attribute("data-id")
    with page.expect_navigation():
        rows.nth(2).click()
    press_and_wait(page, "u")  # the list link: page 2, that row focused and in view
    assert "page=2" in page.url and focused_row(page) == third
    page.keyboard.press("j")  # and the keys go on from there
    following = focused_row(page)
    assert following not in (None, third)
    press_and_wait(page, "Enter")
    assert current_id(page) == following
    page.go_back()  # the browser's Back button lands on the row too
    page.wait_for_load_state()
    assert "page=2" in page.url and focused_row(page) == following

    page.goto(url + "?task=math")  # a filter is kept, and the row after a label
    for _ in range(5):
        page.keyboard.press("j")
    press_and_wait(page, "Enter")
    press_and_wait(page, "a")
    labelled_next = current_id(page)
    press_and_wait(page, "u")
    assert "task=math" in page.url and focused_row(page) == labelled_next


def test_n_opens_the_next_unlabelled(
    new_page: NewPage, servers: Servers, corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.sqlite"
    url = servers.start(str(corpus / "example"), "--db", str(db))
    ids = [e.id for e in RolloutIndex.load([str(corpus / "example")]).entries]
    store = LabelStore(db)
    for rid in (ids[1], ids[2], ids[4]):
        store.set_label(rid, "accept", "", "earlier")
    page = new_page()
    page.goto(f"{url}r/{ids[0]}")
    press_and_wait(page, "N")  # shift+n: n alone writes a note
    assert current_id(page) == ids[3]
    press_and_wait(page, "a")  # labelled: on to ids[4], already labelled; N skips it
    assert current_id(page) == ids[4]
    press_and_wait(page, "N")
    assert current_id(page) == ids[5]
    page.goto(url)
    with page.expect_navigation():
        page.get_by_role("link", name="next unlabelled").click()  # the button on the list
    assert current_id(page) == ids[0]
    assert load_labels(db)[ids[3]] == "accept"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("release")
    assert (
        main(["build", str(Path(__file__).parents[2] / "examples" / "rollouts"), "-o", str(root), "-q"]) == 0
    )
    return root / "v1"


def test_pairs_side_by_side(new_page: NewPage, servers: Servers, release: Path, tmp_path: Path) -> None:
    db = tmp_path / "p.sqlite"
    url = servers.start(str(release), "--db", str(db))
    index = PairIndex.load(pair_sources([str(release)]) or [])
    page = new_page()
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(url)
    assert f"{len(index)} of {len(index)} DPO pairs" in page.locator(".filters").inner_text()
    press_and_wait(page, "N")
    first = current_id(page)
    assert first == index.entries[0].id
    chosen, rejected = page.locator(".side-col.chosen"), page.locator(".side-col.rejected")
    left, right = chosen.bounding_box(), rejected.bounding_box()
    assert left and right and left["x"] + left["width"] <= right["x"] and abs(left["y"] - right["y"]) < 2
    assert min(left["width"], right["width"]) > 350
    pair = index.load_pair(index.entries[0])
    assert chosen.locator("article.msg").count() == len(pair.chosen)
    assert rejected.locator("article.msg").count() == len(pair.rejected)
    assert f"reward {pair.chosen_reward:.4g}" in chosen.locator(".side-head").inner_text()
    press_and_wait(page, "r")  # a pair judged wrong: on to the next pair
    assert current_id(page) == index.entries[1].id
    press_and_wait(page, "u")
    assert focused_row(page) == index.entries[1].id
    assert load_labels(db) == {first: "reject"}


def test_tool_outputs_and_hidden_reasoning_read_well(
    new_page: NewPage, servers: Servers, tmp_path: Path
) -> None:
    path = write_rows(tmp_path / "views" / "views.jsonl", [*view_rows(), surrogate_row()])
    url = servers.start(str(path.parent), "--db", str(tmp_path / "r.sqlite"))
    with_tools, alone, surrogates = (e.id for e in RolloutIndex.load([str(path)]).entries)
    page = new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{url}r/{with_tools}")
    outputs = page.locator(".msg.tool .text")
    assert outputs.nth(0).inner_text() == json.dumps(FORECAST, indent=2)
    assert outputs.nth(1).inner_text() == "AQI 31 (good)\nPM2.5 7"
    assert '\\"' not in page.locator(".conversation").inner_text()
    marks = page.locator(".reasoning-hidden")
    assert marks.count() == 3 and all(marks.nth(i).is_visible() for i in range(3))
    assert "ENCRYPTED REASONING" in marks.nth(0).inner_text().upper()
    page.goto(f"{url}r/{alone}")
    assert page.locator(".msg.hidden-only").count() == 2
    response = page.goto(f"{url}r/{surrogates}")
    assert response is not None and response.status == 200
    assert "\\ud800 lone high" in page.locator(".conversation").inner_text()
    assert errors == []
