"""Faults: 500s, 429s, hangs, dropped connections and malformed bodies. No row is lost, every failure is
recorded with its reason, retries happen, and --resume against a healed server completes the run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_collect_fakes import FakeServer, Reply, completion, keys, read_jsonl, task_of, task_row, write_jsonl

from rollforge.cli.main import main
from rollforge.io.read import read_rollouts
from rollforge.rollout import Rollout

REPEATS, MAX_RETRIES = 2, 2  # 3 attempts per row
ALL_KEYS = {(t, r): 1 for t in range(8) for r in range(REPEATS)}


class Flaky:
    """Task 0 fine; 1: two 503s then fine; 2: always 500; 3: always 429; 4: hangs; 5: not JSON;
    6: drops the connection; 7: JSON without choices. ``healed`` answers everything."""

    def __init__(self) -> None:
        self.healed = False
        self.seen: Counter = Counter()

    def __call__(self, path: str, body: Any) -> Reply:
        task = task_of(body)
        self.seen[task] += 1
        good = Reply(body=completion("\\boxed{1}"))
        if self.healed or task == 0 or (task == 1 and self.seen[task] > 2):
            return good
        return {
            1: Reply(503, {"error": "warming up"}),
            2: Reply(500, {"error": "boom"}),
            3: Reply(429, {"error": "slow down"}, headers={"retry-after": "0"}),
            4: Reply(hang=5.0),
            5: Reply(body=b"{not json"),
            6: Reply(drop=True),
            7: Reply(body={"object": "error"}),
        }[task]


def _argv(tasks: Path, out: Path, url: str, *extra: str) -> list[str]:
    return ["collect", str(tasks), "-o", str(out), "--base-url", url, "--model", "m", "--verifier", "exact",
            "--num-repeats", str(REPEATS), "--max-retries", str(MAX_RETRIES), "--timeout", "0.3",
            "--retry-base-delay", "0.01", "--concurrency", "6", "--json", *extra]  # fmt: skip


def _collect(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_faults_are_recorded_then_resume_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [task_row(i, "q", "1") for i in range(8)])
    out, failures = tmp_path / "out.jsonl", tmp_path / "out_failures.jsonl"
    flaky = Flaky()
    with FakeServer(flaky) as server:
        code, summary, err = _collect(_argv(tasks, out, server.url), capsys)
        assert code == 1 and "12 rows failed" in err

        done, failed = read_jsonl(out), read_jsonl(failures)
        assert keys(done) + keys(failed) == ALL_KEYS  # every key exactly once, in one of the two files
        assert keys(done) == {(t, r): 1 for t in (0, 1) for r in range(REPEATS)}
        reasons = {(f["_ng_task_index"], f["reason"], f["stage"], f["attempts"]) for f in failed}
        assert reasons == {
            (2, "http_500", "generate", 3),
            (3, "http_429", "generate", 3),
            (4, "timeout", "generate", 3),
            (5, "malformed_response", "generate", 1),  # a 200 that is not JSON: not retried
            (6, "connection_error", "generate", 3),
            (7, "malformed_response", "generate", 1),
        }
        assert "HTTP 500" in next(f["error"] for f in failed if f["reason"] == "http_500")
        assert summary["failed_by_reason"] == {"http_500": 2, "http_429": 2, "timeout": 2,
                                               "malformed_response": 4, "connection_error": 2}  # fmt: skip
        assert (summary["written"], summary["failed"], summary["attempted"]) == (4, 12, 16)
        # Requests per task: retried ones 3 per row, task 1 two 503s then success, malformed ones once.
        assert flaky.seen == {0: 2, 1: 4, 2: 6, 3: 6, 4: 6, 5: 2, 6: 6, 7: 2}
        assert (summary["requests"], summary["retries"]) == (34, 18)

        flaky.healed = True
        code, summary, err = _collect(_argv(tasks, out, server.url, "--resume"), capsys)
    assert code == 0, err
    assert (summary["already_done"], summary["attempted"], summary["written"], summary["failed"]) == (
        4,
        12,
        12,
        0,
    )
    assert keys(read_jsonl(out)) == ALL_KEYS
    assert failures.read_text() == ""  # failures hold the latest run's only: none left
    records = list(read_rollouts([str(out)]))
    assert len(records) == 16 and all(isinstance(r, Rollout) and r.reward == 1.0 for r in records)


def test_resume_drops_a_partial_last_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [task_row(i, "q", "1") for i in range(3)])
    out = tmp_path / "out.jsonl"
    with FakeServer(lambda path, body: Reply(body=completion("\\boxed{1}"))) as server:
        assert _collect(_argv(tasks, out, server.url), capsys)[0] == 0
        # A crash mid-write (another writer, a power cut): the last line loses its tail and its newline.
        lines = out.read_bytes().splitlines(keepends=True)
        lost = json.loads(lines[-1])
        out.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])
        assert len(list(read_rollouts([str(out)]))) == 6  # five rollouts and one reject: the partial line

        code, summary, err = _collect(_argv(tasks, out, server.url, "--resume"), capsys)
    assert code == 0
    assert "dropped a partial last line (40 bytes)" in err
    assert (summary["already_done"], summary["written"]) == (5, 1)
    rows = read_jsonl(out)
    assert keys(rows) == {(t, r): 1 for t in range(3) for r in range(REPEATS)}
    assert (rows[-1]["_ng_task_index"], rows[-1]["_ng_rollout_index"]) == (
        lost["_ng_task_index"],
        lost["_ng_rollout_index"],
    )


def test_existing_output_needs_resume_or_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [task_row(0, "q", "1")])
    out = tmp_path / "out.jsonl"
    out.write_text('{"old": 1}\n')
    with FakeServer(lambda path, body: Reply(body=completion("\\boxed{1}"))) as server:
        assert main(_argv(tasks, out, server.url)) == 1
        assert (
            "already exists (pass --resume to finish that run, or --overwrite to start over)"
            in capsys.readouterr().err
        )
        code, summary, _ = _collect(_argv(tasks, out, server.url, "--overwrite"), capsys)
    assert code == 0 and summary["written"] == 2
    assert keys(read_jsonl(out)) == {(0, 0): 1, (0, 1): 1}


def test_a_400_for_the_models_own_unparsable_output_is_sampled_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """transformers serve answers 400 when its parser rejects what the model generated (a random model's
    unclosed tool call): task 0 gets that twice, then a good sample; task 1 always; task 2 a plain 400 (the
    request's fault), which is never retried."""
    unparsable = "ValueError: json parser could not parse region as JSON.\nContent: '{\"name\": '"
    seen: Counter = Counter()

    def handler(path: str, body: Any) -> Reply:
        task = task_of(body)
        seen[task] += 1
        if task == 0 and seen[task] > 2:
            return Reply(body=completion("\\boxed{1}"))
        if task in (0, 1):
            return Reply(400, {"error": unparsable})
        return Reply(400, {"error": "unknown field 'temperatur'"})

    tasks = write_jsonl(tmp_path / "tasks.jsonl", [task_row(i, "q", "1") for i in range(3)])
    out = tmp_path / "out.jsonl"
    with FakeServer(handler) as server:
        argv = _argv(tasks, out, server.url)
        argv[argv.index("--num-repeats") + 1] = "1"
        code, summary, _ = _collect(argv, capsys)
    assert code == 1
    assert summary["written"] == 1  # task 0 on its third sample
    assert summary["failed_by_reason"] == {"unparsable_model_output": 1, "http_400": 1}
    failed = {f["_ng_task_index"]: f for f in read_jsonl(tmp_path / "out_failures.jsonl")}
    assert (failed[1]["reason"], failed[1]["attempts"]) == ("unparsable_model_output", MAX_RETRIES + 1)
    assert (failed[2]["reason"], failed[2]["attempts"]) == ("http_400", 1)
    assert seen == {0: 3, 1: MAX_RETRIES + 1, 2: 1}
