"""Browser tests: Debian's Chromium driven by Playwright, against the real review server in a subprocess.

They skip (saying why) when /usr/bin/chromium is missing; CI installs it (`make browser`). When a test
fails, every page it opened is saved as a PNG under $ROLLFORGE_TEST_ARTIFACTS (default: pytest's
temporary directory, ``artifacts/``); the path is printed in the test's report.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from rollforge.example import write_example
from tests.browser.review_browser_support import CHROMIUM, Servers, launch
from tests.test_review_fixtures import write_hostile


# Module scope, not session: a running sync Playwright holds an asyncio loop on the main thread, and the
# rest of the suite (asyncio.run in the collect tests) must not run while it is alive.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"browser tests need Debian's Chromium at {CHROMIUM}: "
            "run `make browser` (apt-get install chromium)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"report_{report.when}", report)  # read by the `new_page` fixture's teardown
    return report


def _artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(os.environ.get("ROLLFORGE_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def new_page(
    browser: Any, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Any]]:
    """Pages in fresh browser contexts (own cookies); screenshotted if the test fails."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        return context.new_page()

    yield make
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        for i, page in enumerate(p for c in contexts for p in c.pages):
            path = _artifacts(tmp_path_factory) / f"{name}-{i}.png"
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot of the failed page: {path}")
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 example rollouts (tool calling, math, multi-turn support) and hostile ones, in separate folders."""
    root = tmp_path_factory.mktemp("browser-corpus")
    write_example(root / "example", rollouts=60)
    write_hostile(root / "hostile")
    return root


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    for url in list(started.procs):
        started.stop(url)
