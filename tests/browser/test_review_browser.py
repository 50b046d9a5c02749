"""The review app in a real browser: keyboard flow, persistence, concurrent reviewers, hostile rollouts,
CSRF."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollforge.labels import LabelStore, load_labels
from tests.browser.review_browser_support import Servers, current_id, launch, press_and_wait
from tests.test_review_fixtures import Tags

NewPage = Callable[[], Any]


def rollout_ids(page: Any, url: str) -> list[str]:
    """Rollout ids in list order, from the first list page."""
    page.goto(url)
    hrefs = page.locator("a[data-row]").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    return [href.split("/r/")[1].split("?")[0] for href in hrefs]


def test_keyboard_review_flow(new_page: NewPage, servers: Servers, corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "review.sqlite"
    url = servers.start(str(corpus / "example"), "--db", str(db), "--reviewer", "kb")
    page = new_page()
    ids = rollout_ids(page, url)
    page.keyboard.press("j")  # the list: j moves to the first row, Enter opens it
    press_and_wait(page, "Enter")
    assert current_id(page) == ids[0]

    press_and_wait(page, "a")  # accept -> the next rollout
    assert current_id(page) == ids[1]

    page.keyboard.press("n")
    note = "typing j k a r f ? n here must not trigger anything"
    page.keyboard.type(note)
    assert current_id(page) == ids[1] and page.locator("#help").is_hidden()
    assert page.locator("#note").input_value() == note
    page.keyboard.press("Escape")  # leave the note box: keys are shortcuts again
    press_and_wait(page, "f")
    assert current_id(page) == ids[2]

    press_and_wait(page, "r")
    press_and_wait(page, "k")  # back to the one just rejected
    assert current_id(page) == ids[2]
    assert page.locator(".current .badge").inner_text() == "reject"
    press_and_wait(page, "j")
    assert current_id(page) == ids[3]

    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("#help").is_hidden()

    assert load_labels(db) == {ids[0]: "accept", ids[1]: "flag", ids[2]: "reject"}
    assert LabelStore(db).get(ids[1]).note == note  # type: ignore[union-attr]
    assert LabelStore(db).get(ids[0]).reviewer == "kb"  # type: ignore[union-attr]
    press_and_wait(page, "u")
    assert "3</b> / 60 reviewed" in page.content()


def test_filter_is_kept_while_labelling(
    new_page: NewPage, servers: Servers, corpus: Path, tmp_path: Path
) -> None:
    url = servers.start(str(corpus / "example"), "--db", str(tmp_path / "r.sqlite"))
    page = new_page()
    ids = rollout_ids(page, url + "?status=unlabelled&task=math")
    page.goto(f"{url}r/{ids[0]}?status=unlabelled&task=math")
    press_and_wait(page, "a")
    assert current_id(page) == ids[1] and "status=unlabelled" in page.url and "task=math" in page.url
    assert page.locator('[data-key="k"]').count() == 0  # the accepted one left the filter: nothing before
    press_and_wait(page, "u")
    assert page.locator("a[data-row]").count() == len(ids) - 1


def test_labels_survive_a_server_restart(
    new_page: NewPage, servers: Servers, corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "review.sqlite"
    url = servers.start(str(corpus / "example"), "--db", str(db))
    page = new_page()
    ids = rollout_ids(page, url)
    page.goto(f"{url}r/{ids[5]}")
    page.keyboard.press("n")
    page.keyboard.type("kept across restarts")
    page.keyboard.press("Escape")
    press_and_wait(page, "r")
    servers.stop(url)

    url = servers.start(str(corpus / "example"), "--db", str(db))
    page.goto(f"{url}r/{ids[5]}")
    assert page.locator(".current .badge").inner_text() == "reject"
    assert page.locator("#note").input_value() == "kept across restarts"
    page.goto(url + "?status=reject")
    assert page.locator("a[data-row]").count() == 1
    assert "1</b> / 60 reviewed" in page.content()


def _label_many(url: str, ids: list[str], label_key: str, shared: str, errors: list[BaseException]) -> None:
    """One reviewer, in its own thread with its own Playwright and browser (Playwright is per-thread)."""
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_context().new_page()
            for rid in [*ids, shared]:
                page.goto(f"{url}r/{rid}")
                page.keyboard.press("n")
                page.keyboard.type(f"note {label_key} {rid}")
                page.keyboard.press("Escape")
                with page.expect_navigation():
                    page.keyboard.press(label_key)
            browser.close()
    except BaseException as exc:
        errors.append(exc)


def test_two_reviewers_at_once_lose_nothing(
    new_page: NewPage, servers: Servers, corpus: Path, tmp_path: Path
) -> None:
    db = tmp_path / "review.sqlite"
    url = servers.start(str(corpus / "example"), "--db", str(db))
    ids = rollout_ids(new_page(), url)
    shared = ids[40]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_label_many, args=(url, ids[:10], "a", shared, errors)),
        threading.Thread(target=_label_many, args=(url, ids[10:20], "r", shared, errors)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    labels = load_labels(db)
    assert {rid: labels[rid] for rid in ids[:20]} == {
        **dict.fromkeys(ids[:10], "accept"),
        **dict.fromkeys(ids[10:20], "reject"),
    }
    assert len(labels) == 21
    store = LabelStore(db)
    assert sorted(h.label for h in store.history(shared)) == ["accept", "reject"]
    assert store.get(ids[3]).note == f"note a {ids[3]}"  # type: ignore[union-attr]


def test_hostile_rollouts_render_as_text_and_run_nothing(
    new_page: NewPage, servers: Servers, corpus: Path, tmp_path: Path
) -> None:
    url = servers.start(str(corpus / "hostile"), "--db", str(tmp_path / "review.sqlite"))
    page = new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    refused: list[str] = []  # anything the CSP had to block means something got injected
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    ids = rollout_ids(page, url)
    assert len(ids) == 3
    for rid in ids:
        page.goto(f"{url}r/{rid}")
        page.keyboard.press("e")  # open every reasoning block
        for link in page.locator("a[data-expand]").all():
            link.click()  # fetch the full text of each long block
        page.wait_for_load_state("networkidle")
        assert page.locator("a[data-expand]").count() == 0
        _assert_inert(page)
        page.keyboard.press("n")
        page.keyboard.type("</textarea><img src=x onerror=alert(9)> javascript:alert(9)")
        page.keyboard.press("Escape")
        press_and_wait(page, "f")
    page.goto(f"{url}r/{ids[0]}")  # a hostile note in the textarea and the history
    _assert_inert(page)
    assert page.locator("#note").input_value().startswith("</textarea><img src=x")
    page.goto(url)  # the list: hostile task types, file name and notes
    _assert_inert(page)
    assert "<script>alert('task')</script>" in page.locator("table.rollouts").inner_text()
    page.wait_for_timeout(300)  # give any injected onerror/onload handler time to fire
    assert dialogs == [] and refused == []


def _assert_inert(page: Any) -> None:
    assert page.locator("img[src=x]").count() == 0
    assert (
        page.locator("script").count() == 1 and page.locator('script[src="/static/review.js"]').count() == 1
    )
    assert page.locator("a[href^=javascript], [onerror], [onload], svg, iframe").count() == 0
    assert Tags(page.content()).injected() == []
    assert "alert(" in page.locator("body").inner_text()  # the payloads are on the page, as visible text


def test_post_needs_the_csrf_token(new_page: NewPage, servers: Servers, corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "review.sqlite"
    url = servers.start(str(corpus / "example"), "--db", str(db))
    page = new_page()
    rid = rollout_ids(page, url)[0]
    page.goto(f"{url}r/{rid}")
    post = """async ([rid, token]) => {
        const body = new URLSearchParams({label: "reject"});
        if (token) body.set("csrf", token);
        const r = await fetch(`/r/${rid}/label`, {method: "POST", body, redirect: "manual"});
        return r.type === "opaqueredirect" ? 303 : r.status;
    }"""
    assert page.evaluate(post, [rid, None]) == 403
    assert page.evaluate(post, [rid, "f" * 64]) == 403
    assert load_labels(db) == {}
    token = page.locator("input[name=csrf]").input_value()
    assert page.evaluate(post, [rid, token]) == 303
    assert load_labels(db) == {rid: "reject"}
    other = new_page()  # another browser session's token is not this one's
    other.goto(f"{url}r/{rid}")
    assert other.evaluate(post, [rid, token]) == 403


@pytest.mark.parametrize("path", ["", "r/0000000000000000"])
def test_pages_load_without_console_errors(
    new_page: NewPage, servers: Servers, corpus: Path, tmp_path: Path, path: str
) -> None:
    url = servers.start(str(corpus), "--db", str(tmp_path / "r.sqlite"))
    page = new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "404" not in m.text else None)
    page.goto(url + path)
    assert errors == []
