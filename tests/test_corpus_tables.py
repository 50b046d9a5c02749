"""`inspect` and `build` on a real corpus: a per-file table (rollouts, rejects, reward range), the rejected
lines readable at 80 columns with `file:line` first and whole, examples spread over files, an invalid-JSON
message that says what was found and where, and build's terminal output carrying the report's warnings.

The real NeMo Gym rollouts come from ../shared (skipped when absent), copied into a temporary folder with a
few broken files beside them; expectations are computed from the raw bytes with plain Python."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from rollforge import api
from rollforge.cli.corpus_tables import short_paths, shorten
from rollforge.cli.main import main

BROKEN = {
    # a long name, so that it must be shortened to fit 80 columns
    "resources_servers_conversational_tool_use_simulation_second_run.jsonl": b"<PLACEHOLDER ROW>\n{bad\n",
    "zz_cut.jsonl": b'{"responses_create_params": {"input": [{"role": "user", "content": "hi"}]}, "reward": 1.0, "x": tru}\n',
}


@pytest.fixture
def corpus(shared_rollouts: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for path in sorted(shared_rollouts.glob("*.jsonl")):
        shutil.copy(path, folder / path.name)
    for name, data in BROKEN.items():
        (folder / name).write_bytes(data)
    return folder


def raw_rewards(path: Path) -> list[float | None]:
    """Per non-blank line: its reward if it is a JSON object with a numeric one, else None."""
    out: list[float | None] = []
    for raw in path.read_bytes().splitlines():
        if raw.strip():
            try:
                value = json.loads(raw).get("reward")
            except (ValueError, AttributeError):
                value = None
            out.append(value if isinstance(value, (int, float)) else None)
    return out


def test_inspect_has_a_row_per_file(corpus: Path) -> None:
    summary = api.inspect(corpus, workers=2)
    assert set(summary["per_file"]) == {str(p) for p in corpus.glob("*.jsonl")}
    for path in corpus.glob("*.jsonl"):
        row = summary["per_file"][str(path)]
        rewards = raw_rewards(path)
        assert row["rollouts"] + row["rejected"] == len(rewards), path.name
        rejected_here = {r["line"] for r in summary["rejected"] if r["file"] == str(path)}
        kept = [w for n, w in enumerate(rewards, 1) if n not in rejected_here and w is not None]
        if row["rollouts"]:
            assert (row["reward"]["min"], row["reward"]["max"]) == (min(kept), max(kept)), path.name
        else:
            assert row["reward"] == {"min": None, "max": None}
    empty = [p for p, row in summary["per_file"].items() if not row["rollouts"]]
    assert sorted(Path(p).name for p in empty) == sorted(BROKEN)


def test_invalid_json_says_what_was_found_and_where(corpus: Path) -> None:
    summary = api.inspect(corpus, workers=1)
    examples = summary["rejected_by_reason"]["invalid_json"]["example_lines"]
    messages = {(Path(e["file"]).name, e["line"]): e["message"] for e in examples}
    long_name = next(iter(BROKEN))
    assert messages[(long_name, 1)] == (
        "not valid JSON at column 1: invalid character, found '<' in '<PLACEHOLDER ROW>'"
    )
    assert "byte" not in " ".join(messages.values())
    column = BROKEN["zz_cut.jsonl"].index(b"tru}") + 2  # msgspec stops at the "r": 1-based, that is +2
    assert re.fullmatch(
        rf"not valid JSON at column {column}: invalid character, found 'r' in '\.\.\..*\"x\": tru}}'",
        messages[("zz_cut.jsonl", 1)],
    )


def test_reject_examples_are_spread_over_files(corpus: Path) -> None:
    examples = api.inspect(corpus)["rejected_by_reason"]["invalid_json"]["example_lines"]
    assert {Path(e["file"]).name for e in examples} == set(BROKEN)  # not the first three of one file


def test_tables_are_readable_at_80_columns(
    corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["inspect", str(corpus), "-q"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    summary = api.inspect(corpus)
    _, shown = short_paths(list(summary["per_file"]))
    for path in summary["per_file"]:
        assert shown[path] in out and shown[path].endswith(
            ".jsonl"
        )  # every file has its row, extension shown
    for entry in summary["rejected_by_reason"].values():
        for e in entry["example_lines"]:
            assert f"{shown[e['file']]}:{e['line']}" in out  # file:line whole, line number never cut
    assert f"files ({len(summary['per_file'])}) in" in out  # the folder they share, named once


def test_shorten_keeps_the_end() -> None:
    name = "resources_servers_conversational_tool_use_simulation.jsonl"
    short = shorten(name, 34)
    assert len(short) == 34 and short.endswith("simulation.jsonl") and short.startswith("resources_")
    assert shorten("a.jsonl") == "a.jsonl"


def test_build_prints_the_reports_warnings(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one warning a line
    assert main(["build", str(corpus), "-o", str(tmp_path / "rel"), "-q"]) == 0
    captured = capsys.readouterr()
    out = captured.err + captured.out  # the summary on stderr, what was written on stdout
    manifest = json.loads((tmp_path / "rel" / "v1" / "manifest.json").read_text())
    assert manifest["warnings"]  # a small real corpus: at least "Dataset size" warns
    html = (tmp_path / "rel" / "v1" / "report.html").read_text()
    for warning in manifest["warnings"]:
        assert " ".join(f"warning: {warning}".split()) in " ".join(out.split())  # as printed, wrapped or not
        assert warning.split(":")[0] in html
    assert "files (24)" in out and "rejected lines (3)" in out


def test_a_corpus_of_many_files_shows_its_problem_files_first(capsys: pytest.CaptureFixture) -> None:
    from rich.console import Console

    from rollforge.cli.corpus_tables import MAX_FILE_ROWS, print_file_table

    row = {"rollouts": 5, "rejected": 0, "reward": {"min": 0.0, "max": 1.0}}
    per_file = {f"shard-{n:05d}.jsonl": row for n in range(1000)}
    per_file["shard-00500.jsonl"] = {"rollouts": 0, "rejected": 5, "reward": {"min": None, "max": None}}
    print_file_table(Console(width=80), per_file)
    out = capsys.readouterr().out
    assert out.index("shard-00500.jsonl") < out.index("shard-00000.jsonl")  # the file that gave nothing first
    assert sum("shard-" in line for line in out.splitlines()) == MAX_FILE_ROWS
    assert f"and {1000 - MAX_FILE_ROWS} more files" in out
