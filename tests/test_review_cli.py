"""``rollforge review`` and ``rollforge review export`` through the real CLI entry point."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from rollforge.cli.main import main
from rollforge.example import write_example
from rollforge.labels import LabelStore
from tests.test_review_fixtures import start_server, stop_server


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-rollouts")
    write_example(root, rollouts=12, bad_lines=False)
    return root


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.com"])
def test_non_loopback_bind_without_token_refuses_to_start(
    host: str, rollouts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", str(rollouts), "--db", str(tmp_path / "r.sqlite"), "--host", host]) == 1
    err = capsys.readouterr().err
    assert f"refusing to listen on {host} without --token" in err
    assert not (tmp_path / "r.sqlite").exists()  # refused before touching anything


@pytest.mark.parametrize("token", ["short", "has space in it", "semi;colon;token"])
def test_tokens_that_cannot_travel_in_urls_are_refused(
    token: str, rollouts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "r.sqlite")
    assert main(["review", str(rollouts), "--db", db, "--host", "0.0.0.0", "--token", token]) == 1
    assert "--token must be at least 8 characters" in capsys.readouterr().err


def test_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.sqlite"
    LabelStore(db).set_label("abc", "reject", "n", "me")
    out = tmp_path / "labels.jsonl"
    assert main(["review", "export", "--db", str(db), "-o", str(out)]) == 0
    assert orjson.loads(out.read_bytes())["label"] == "reject"
    assert "exported 1 labels" in capsys.readouterr().err
    assert main(["review", "export", "--db", str(db), "-o", "-"]) == 0
    assert '"rollout_id":"abc"' in capsys.readouterr().out


def test_export_of_a_foreign_file_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "rollouts.jsonl"
    bogus.write_text("{}\n")
    assert main(["review", "export", "--db", str(bogus), "-o", str(tmp_path / "x.jsonl")]) == 1
    assert "is not a rollforge review database" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()
    assert main(["review", "export", "--db", str(bogus)]) == 1
    assert "needs -o FILE" in capsys.readouterr().err


def test_bad_strata_are_a_usage_error(
    rollouts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["review", str(rollouts), "--db", str(tmp_path / "r.sqlite"), "--strata", "0.8,0.5"])
    assert "thresholds must increase" in capsys.readouterr().err


def test_server_starts_serves_and_stops(rollouts: Path, tmp_path: Path) -> None:
    proc, url = start_server([str(rollouts), "--db", str(tmp_path / "r.sqlite"), "--strata", "0.3,0.7"])
    try:
        with urllib.request.urlopen(url) as response:
            html = response.read().decode()
        assert "&lt; 0.3" in html and "[0.3, 0.7)" in html and "&gt;= 0.7" in html
        assert "/ 12 reviewed" in html
    finally:
        stop_server(proc)


def test_real_process_refuses_a_public_bind_without_token(rollouts: Path, tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "rollforge.cli.main",
        "review",
        str(rollouts),
        "--db",
        str(tmp_path / "r.sqlite"),
    ]
    done = subprocess.run(
        [*cmd, "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "refusing to listen on 0.0.0.0 without --token" in done.stderr


def test_public_bind_with_token_demands_it(rollouts: Path, tmp_path: Path) -> None:
    token = "t0ken-for-the-test"
    proc, url = start_server(
        [str(rollouts), "--db", str(tmp_path / "r.sqlite"), "--host", "0.0.0.0", "--token", token]
    )
    local = url.replace("0.0.0.0", "127.0.0.1")
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(local)
        assert refused.value.code == 401
        request = urllib.request.Request(local, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request) as response:
            assert response.status == 200
    finally:
        stop_server(proc)


def test_a_dpo_file_is_served_as_pairs(
    rollouts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dpo = tmp_path / "dpo.jsonl"
    assert main(["dpo", str(rollouts), "-o", str(dpo), "--format", "nemo-rl", "-q"]) == 0
    pairs = len(dpo.read_bytes().splitlines())
    assert pairs > 0
    proc, url = start_server([str(dpo), "--db", str(tmp_path / "p.sqlite")])
    try:
        with urllib.request.urlopen(url) as response:
            assert f"{pairs} of {pairs} DPO pairs" in response.read().decode()
    finally:
        stop_server(proc)
    assert proc.stderr is not None and f"rollforge review: {pairs} DPO pairs" in proc.stderr.read()
    capsys.readouterr()
    assert main(["review", str(dpo), str(rollouts), "--db", str(tmp_path / "x.sqlite")]) == 1
    assert "one review shows one kind" in capsys.readouterr().err
