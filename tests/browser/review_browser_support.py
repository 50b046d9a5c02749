"""Helpers of the browser tests (a module of its own: test modules should not import conftest)."""

from __future__ import annotations

import re
from typing import Any

from tests.test_review_fixtures import start_server, stop_server

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialing out, and a closed network refuses it.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class Servers:
    """`rollforge review` processes started by a test, by base URL."""

    def __init__(self) -> None:
        self.procs: dict[str, Any] = {}

    def start(self, *args: str) -> str:
        proc, url = start_server(list(args))
        self.procs[url] = proc
        return url

    def stop(self, url: str) -> None:
        stop_server(self.procs.pop(url))


def press_and_wait(page: Any, key: str) -> None:
    """Press a key that navigates, and wait for the new page."""
    with page.expect_navigation():
        page.keyboard.press(key)


def current_id(page: Any) -> str:
    """The id of the rollout or pair the page shows."""
    match = re.search(r"/r/([0-9a-f]{16})", page.url)
    assert match, page.url
    return match.group(1)
