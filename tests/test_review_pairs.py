"""The review app on DPO pairs: every preference format rollforge writes (by its own `dpo` and `build`
commands), read back as chosen beside rejected, labelled under the pair's id."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

from rollforge.cli.main import main
from rollforge.errors import RollforgeError
from rollforge.labels import LabelStore, load_labels
from rollforge.review.app import create_app
from rollforge.review.index import RolloutIndex
from rollforge.review.pairs import PairIndex, pair_sources, read_pair
from rollforge.review.security import Guard
from rollforge.review.server import open_index
from tests.test_review_fixtures import surrogate_row, write_rows

FORMATS = ("trl", "nemo-rl", "openai")


@pytest.fixture(scope="module")
def written(examples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's pairs in each format, and a release of it, all written by the CLI."""
    root = tmp_path_factory.mktemp("pairs")
    for fmt in FORMATS:
        out = root / f"{fmt}.jsonl"
        assert main(["dpo", str(examples_dir), "-o", str(out), "--format", fmt, "-q"]) == 0
    assert main(["build", str(examples_dir), "-o", str(root / "releases"), "-q"]) == 0
    return root


def client_for(index: PairIndex | RolloutIndex, db: Path) -> TestClient:
    app = create_app(index, LabelStore(db), "tester", Guard(8765))
    return TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False)


def rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _expected(row: dict, fmt: str) -> tuple[list, list, list]:
    """(prompt, chosen, rejected) as each format spells them: the test's own reading of the formats."""
    if fmt == "trl":
        return row["prompt"], row["chosen"], row["rejected"]
    if fmt == "nemo-rl":
        ranked = sorted(row["completions"], key=lambda c: c["rank"])
        return row["context"], ranked[0]["completion"], ranked[1]["completion"]
    return row["input"]["messages"], row["preferred_output"], row["non_preferred_output"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_dpo_format_is_read_back(written: Path, fmt: str) -> None:
    path = written / f"{fmt}.jsonl"
    index = open_index([str(path)])
    assert isinstance(index, PairIndex) and index.formats == {fmt}
    source = rows(path)
    assert len(index) == len(source) > 10 and not index.rejected
    for entry, row in zip(index.entries, source, strict=True):
        pair = index.load_pair(entry)
        assert (pair.prompt, pair.chosen, pair.rejected) == _expected(row, fmt)
        if fmt == "openai":  # no rewards in OpenAI's preference rows
            assert entry.margin is None
        else:
            assert (entry.chosen_reward, entry.rejected_reward) == (
                row["chosen_reward"],
                row["rejected_reward"],
            )
            assert entry.margin == pytest.approx(row["margin"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_pair_page_shows_chosen_beside_rejected(written: Path, fmt: str, tmp_path: Path) -> None:
    index = open_index([str(written / f"{fmt}.jsonl")])
    assert isinstance(index, PairIndex)
    client = client_for(index, tmp_path / "p.sqlite")
    listing = client.get("/").text
    assert f"{len(index)} of {len(index)} DPO pairs" in listing
    assert ("Margin" in listing) == (fmt != "openai")  # no margin filter without rewards
    entry = max(index.entries, key=lambda e: e.chosen_calls + e.rejected_calls)
    pair = index.load_pair(entry)
    html = client.get(f"/r/{entry.id}").text
    chosen_at, rejected_at = html.index('class="side-col chosen"'), html.index('class="side-col rejected"')
    assert html.index('class="boundary"') < chosen_at < rejected_at
    n = len(pair.prompt)
    chosen_msgs = re.findall(
        r'<article class="msg [\w-]+ generated" id="m(\d+)"', html[chosen_at:rejected_at]
    )
    rejected_msgs = re.findall(r'<article class="msg [\w-]+ generated" id="m(\d+)"', html[rejected_at:])
    assert chosen_msgs == [str(n + i) for i in range(len(pair.chosen))]
    assert rejected_msgs == [str(n + i) for i in range(len(pair.rejected))]
    assert f"<dd>{fmt}</dd>" in html
    if fmt == "openai":  # reasoning inline in <think> tags is shown as reasoning
        thinking = next(e for e in index.entries if "<think>" in json.dumps(index.load_pair(e).chosen))
        assert "inline &lt;think&gt; tags" in client.get(f"/r/{thinking.id}").text
    # the full text of a long block, per side
    for side, messages in (("chosen", pair.chosen), ("rejected", pair.rejected)):
        full = client.get(f"/r/{entry.id}/full/{side}.m{n}.c")
        assert (
            full.status_code == 200
            and full.text == (messages[0].get("content") or "").split("</think>")[-1].lstrip()
        )


def test_a_release_is_reviewed_through_its_dpo_split(written: Path, tmp_path: Path) -> None:
    release = written / "releases" / "v1"
    index = open_index([str(release)])
    assert isinstance(index, PairIndex)
    manifest = json.loads((release / "manifest.json").read_text())
    dpo_rows = {o["path"]: o["rows"] for o in manifest["outputs"] if o["path"].startswith("dpo/")}
    assert index.group_counts == {
        "train": dpo_rows["dpo/train.jsonl"],
        "validation": dpo_rows["dpo/validation.jsonl"],
    }
    assert len(index) == sum(dpo_rows.values()) > 0  # the nemo-rl/ copies of the same pairs are not read
    client = client_for(index, tmp_path / "p.sqlite")
    assert client.get("/?task=validation").text.count("data-row href") == index.group_counts["validation"]
    first = index.entries[0]
    page = client.get(f"/r/{first.id}").text
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    done = client.post(
        f"/r/{first.id}/label", data={"label": "reject", "note": "chosen is verbose", "csrf": token}
    )
    assert done.status_code == 303 and done.headers["location"].startswith(f"/r/{index.entries[1].id}")
    assert load_labels(tmp_path / "p.sqlite") == {first.id: "reject"}  # stored under the pair's id


def test_inputs_that_mix_or_hold_no_pairs_are_refused(
    written: Path, examples_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(RollforgeError, match="one review shows one kind"):
        pair_sources([str(written / "trl.jsonl"), str(examples_dir)])
    with pytest.raises(RollforgeError, match="holds releases, not one release"):
        pair_sources([str(written / "releases")])
    bare = tmp_path / "v9"
    (bare / "sft").mkdir(parents=True)
    (bare / "manifest.json").write_text("{}")
    with pytest.raises(RollforgeError, match="a release with no DPO pairs"):
        pair_sources([str(bare)])
    assert pair_sources([str(examples_dir)]) is None  # rollouts: the rollout view


def test_malformed_pairs_are_counted_not_listed(written: Path, tmp_path: Path) -> None:
    good = (written / "nemo-rl.jsonl").read_bytes().splitlines()[:3]
    bad = [b"{not json", b'{"context": [], "completions": [{"rank": 0, "completion": []}]}',
           b'{"chosen": "text", "rejected": [], "prompt": []}']  # fmt: skip
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join([*good, *bad, good[0]]) + b"\n")
    index = open_index([str(path)])
    assert len(index) == 3 and index.duplicates == 1
    assert dict(index.rejected) == {"invalid_json": 1, "not_a_pair": 2}
    with pytest.raises(ValueError, match="exactly two"):
        read_pair(orjson.loads(bad[1]))
    path.write_bytes(b"\n".join([bad[0], *good]) + b"\n")  # a broken first line: still pairs
    index = open_index([str(path)])
    assert isinstance(index, PairIndex) and len(index) == 3 and dict(index.rejected) == {"invalid_json": 1}


def test_pairs_with_lone_surrogates_render(tmp_path: Path) -> None:
    """Issue 14 on the pair view: a row the standard library reads (orjson refuses lone surrogates)."""
    prompt = [{"role": "user", "content": "\ud800 in the prompt"}]
    row = {"prompt": prompt, "chosen": [{"role": "assistant", "content": "ok \udfff"}],
           "rejected": [{"role": "assistant", "content": "no"}], "chosen_reward": 1.0, "rejected_reward": 0.0}  # fmt: skip
    path = tmp_path / "dpo.jsonl"
    path.write_text(json.dumps(row) + "\n")
    index = open_index([str(path)])
    assert isinstance(index, PairIndex) and len(index) == 1
    client = client_for(index, tmp_path / "p.sqlite")
    assert "\\ud800 in the prompt" in client.get("/").text
    page = client.get(f"/r/{index.entries[0].id}")
    assert page.status_code == 200 and "ok \\udfff" in page.text
    rollouts = open_index([str(write_rows(tmp_path / "r" / "s.jsonl", [surrogate_row()]))])
    assert isinstance(rollouts, RolloutIndex) and len(rollouts) == 1
