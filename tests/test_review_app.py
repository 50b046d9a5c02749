"""The review app in-process (Starlette's test client): pages, filters, escaping, CSRF, token, headers,
speed."""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

from rollforge.example import write_example
from rollforge.labels import LabelStore
from rollforge.review.app import create_app
from rollforge.review.index import RolloutIndex
from rollforge.review.render import PREVIEW_CHARS
from rollforge.review.security import Guard
from tests.test_review_fixtures import PAYLOAD, Tags, write_big, write_hostile

BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review-corpus")
    write_example(root / "example", rollouts=60)
    write_hostile(root / "hostile")
    write_big(root / "big")
    return root


@pytest.fixture(scope="module")
def index(corpus: Path) -> RolloutIndex:
    return RolloutIndex.load([str(corpus)])


def make_client(index: RolloutIndex, db: Path, token: str | None = None, loopback: bool = True) -> TestClient:
    app = create_app(index, LabelStore(db), "tester", Guard(8765, token, loopback=loopback))
    return TestClient(app, base_url=BASE, follow_redirects=False)


@pytest.fixture
def client(index: RolloutIndex, tmp_path: Path) -> TestClient:
    return make_client(index, tmp_path / "review.sqlite")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def find(index: RolloutIndex, task_type: str | None = None, file_part: str = "") -> str:
    for e in index.entries:
        if (task_type is None or e.task_type == task_type) and file_part in index.sources[e.source].path:
            return e.id
    raise AssertionError(f"no rollout with task type {task_type!r} in {file_part!r}")


def test_index_counts_rejects_and_keeps_offsets(index: RolloutIndex) -> None:
    assert len(index) == 60 + 3 + 1
    assert sum(index.rejected.values()) == 5  # the example's deliberately bad lines
    for entry in index.entries[:10]:
        assert index.load_rollout(entry).rollout_id == entry.id


def test_compressed_files_are_reread_by_offset(tmp_path: Path) -> None:
    plain = write_hostile(tmp_path / "plain")
    with gzip.open(tmp_path / "rollouts.jsonl.gz", "wb") as fh:
        fh.write(b"\n" + plain.read_bytes())  # a blank first line: offsets are not line numbers
    index = RolloutIndex.load([str(tmp_path / "rollouts.jsonl.gz")])
    assert len(index) == 3
    for entry in index.entries:
        assert index.load_rollout(entry).rollout_id == entry.id
    client = make_client(index, tmp_path / "r.sqlite")
    assert client.get(f"/r/{index.entries[2].id}").status_code == 200


def test_list_page_filters_and_paginates(client: TestClient, index: RolloutIndex) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "0</b> / 64 reviewed" in page.text
    assert "5 input lines were not usable rollouts" in page.text
    assert page.text.count('data-row href="/r/') == 50  # page size
    second = client.get("/?page=2")
    assert second.text.count('data-row href="/r/') == 14
    high = client.get("/?stratum=2")
    expected = sum(1 for e in index.entries if e.reward >= 0.8)
    assert f"{expected} of 64 rollouts" in high.text
    math = client.get("/?task=math&status=unlabelled")
    assert f"{sum(1 for e in index.entries if e.task_type == 'math')} of 64 rollouts" in math.text
    assert "No rollouts match" in client.get("/?status=reject").text
    for odd in ("page=" + "9" * 5000, "page=²&stratum=²", "stratum=-1&status=<b>", "task=%00"):
        assert client.get(f"/?{odd}").status_code == 200, odd


def test_conversation_page_shows_roles_boundary_and_tool_calls(
    client: TestClient, index: RolloutIndex
) -> None:
    rid = next(
        e.id
        for e in index.entries
        if "tool_calling" in index.sources[e.source].path
        and any(m.get("tool_calls") and m.get("reasoning_content") for m in index.load_rollout(e).messages)
    )
    html = client.get(f"/r/{rid}").text
    assert 'class="msg system"' in html and 'class="msg user"' in html
    assert 'class="msg assistant generated"' in html and 'class="msg tool generated"' in html
    assert html.index('class="boundary"') < html.index('class="msg assistant generated"')
    assert '<details class="reasoning">' in html  # collapsed: no "open" attribute
    assert "\n  &#34;limit&#34;: " in html  # arguments parsed and indented
    assert "metadata" in html and "task_id" in html  # the side panel's fields


def test_environment_user_turns_are_marked(client: TestClient, index: RolloutIndex) -> None:
    rid = next(
        e.id
        for e in index.entries
        if any(m["role"] == "user" for m in index.load_rollout(e).completion)
        and "example" in index.sources[e.source].path
    )
    assert 'class="msg env-user generated"' in client.get(f"/r/{rid}").text


def test_hostile_text_is_escaped_everywhere(client: TestClient, index: RolloutIndex) -> None:
    hostile = [e.id for e in index.entries if "hostile" in index.sources[e.source].path]
    pages = [client.get("/").text, *(client.get(f"/r/{rid}").text for rid in hostile)]
    for html in pages:
        assert Tags(html).injected() == []
        assert sum(1 for tag, _ in Tags(html).tags if tag == "script") == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]
    assert "arguments are not valid JSON" in pages[1]
    assert "image not shown: javascript:alert(1)" in pages[1]


def test_security_headers(client: TestClient) -> None:
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert client.get("/static/review.js").headers["content-security-policy"] == csp


def test_label_needs_csrf_token_and_same_origin(
    client: TestClient, index: RolloutIndex, tmp_path: Path
) -> None:
    rid = index.entries[0].id
    token = csrf_of(client.get(f"/r/{rid}").text)

    def status(data: dict[str, str], **headers: str) -> int:
        return client.post(f"/r/{rid}/label", data=data, headers=headers).status_code

    assert status({"label": "accept"}) == 403
    assert status({"label": "accept", "csrf": "0" * 64}) == 403
    assert status({"label": "accept", "csrf": token}, Origin="http://evil.example") == 403
    assert (
        status({"label": "accept", "csrf": token}, **{"Sec-Fetch-Site": "cross-site", "Origin": "null"})
        == 403
    )
    assert status({"label": "nope", "csrf": token}) == 400
    ok = client.post(
        f"/r/{rid}/label",
        data={"label": "reject", "note": "bad\r\nanswer", "csrf": token, "status": "unlabelled"},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # a form POST under no-referrer
    )  # fmt: skip
    assert ok.status_code == 303
    assert ok.headers["location"].startswith(f"/r/{index.entries[1].id}?status=unlabelled&done={rid}")
    store = LabelStore(tmp_path / "review.sqlite")
    assert store.current() == {rid: "reject"}
    assert store.history(rid)[0].note == "bad\nanswer"
    assert 'as\n  <span class="badge reject">' in client.get(ok.headers["location"]).text


def test_next_and_previous_follow_the_filter(client: TestClient, index: RolloutIndex) -> None:
    math = [e.id for e in index.entries if e.task_type == "math"]
    html = client.get(f"/r/{math[1]}?task=math").text
    assert f'href="/r/{math[2]}?task=math" data-key="j"' in html
    assert f'href="/r/{math[0]}?task=math" data-key="k"' in html
    assert f'href="/?task=math#at-{math[1]}" data-key="u"' in html
    assert (
        f'href="/?page=2#at-{index.entries[55].id}" data-key="u"'
        in client.get(f"/r/{index.entries[55].id}").text
    )


def test_loopback_server_refuses_foreign_host_header(client: TestClient) -> None:
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 421
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200


def test_token_is_required_on_every_request(index: RolloutIndex, tmp_path: Path) -> None:
    client = make_client(index, tmp_path / "db.sqlite", token="s3cret-token", loopback=False)
    assert client.get("/").status_code == 401
    assert client.get("/static/review.css").status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    swap = client.get("/?token=s3cret-token&status=accept")
    assert swap.status_code == 303 and swap.headers["location"] == "/?status=accept"  # token leaves the URL
    assert "rf_token_8765=s3cret-token" in swap.headers["set-cookie"]
    assert client.get("/").status_code == 200  # the cookie carries it now
    fresh = make_client(index, tmp_path / "db.sqlite", token="s3cret-token", loopback=False)
    assert fresh.get("/", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert fresh.get("/", headers={"X-Rollforge-Token": "s3cret-token"}).status_code == 200


def test_rollouts_are_addressed_by_id_only(client: TestClient, index: RolloutIndex) -> None:
    for path in (
        "/r/..%2F..%2Fetc%2Fpasswd",
        "/r/%2Fetc%2Fpasswd",
        "/r/0000000000000000",
        "/static/..%2F..%2Fdb.py",
    ):
        assert client.get(path).status_code == 404, path
    rid = index.entries[0].id
    assert client.get(f"/r/{rid}/full/..%2Fetc").status_code == 404
    assert client.get(f"/r/{rid}/full/m999.c").status_code == 404


def test_large_rollout_renders_fast_and_collapsed(
    client: TestClient, index: RolloutIndex, corpus: Path
) -> None:
    rid = find(index, file_part="big.jsonl")
    client.get(f"/r/{rid}")  # warm up templates
    start = time.perf_counter()
    response = client.get(f"/r/{rid}")
    elapsed = time.perf_counter() - start
    assert response.status_code == 200
    assert elapsed < 2.0, f"1 MB rollout took {elapsed:.2f} s"
    print(f"1 MB rollout page: {elapsed * 1000:.0f} ms, {len(response.text) / 1e3:.0f} kB of HTML")
    size = (corpus / "big" / "big.jsonl").stat().st_size
    assert size > 1_000_000
    blocks = Tags(response.text).blocks
    assert max(len(b) for b in blocks) <= PREVIEW_CHARS  # long texts are previews, not dumped
    assert len(response.text) < size
    assert response.text.count('class="msg tool generated"') == 150
    cut = re.findall(r'href="(/r/[0-9a-f]+/full/m\d+\.c)">show all ([\d,]+) characters', response.text)
    url, chars = max(((u, int(n.replace(",", ""))) for u, n in cut), key=lambda c: c[1])
    assert chars > 100_000  # the very long tool output
    full = client.get(url)
    assert full.headers["content-type"].startswith("text/plain")
    assert len(full.text) == chars


def test_full_text_of_a_hostile_field_is_plain_text(client: TestClient, index: RolloutIndex) -> None:
    rid = find(index, file_part="hostile")
    response = client.get(f"/r/{rid}/full/m0.c")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert PAYLOAD in response.text
