"""``rollforge collect`` end to end against local fake servers: chat endpoint, /verify, agent /run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_collect_fakes import (
    FakeServer,
    Reply,
    completion,
    keys,
    read_jsonl,
    task_of,
    task_row,
    write_jsonl,
)

from rollforge.cli.main import main
from rollforge.io.read import read_rollouts
from rollforge.rollout import Reject, Rollout

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "weather by city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def _tasks(tmp_path: Path) -> Path:
    rows = [
        task_row(0, "What is 1/2 as a decimal?", "0.5", metadata={"task_type": "math"}),
        task_row(1, "What is 2+2?", "4"),
        task_row(2, "Weather in Paris?", "sunny"),
        task_row(3, "Count to a million.", "1000000"),
    ]
    rows[0]["responses_create_params"]["instructions"] = "Put the answer in \\boxed{}."
    rows[2]["responses_create_params"]["tools"] = [WEATHER_TOOL]
    return write_jsonl(tmp_path / "tasks.jsonl", rows)


def _chat(path: str, body: Any) -> Reply:
    """By task: reasoning field + right answer; inline <think> + wrong answer; a tool call; truncation."""
    task = task_of(body)
    if task == 0:
        return Reply(body=completion("So it is \\boxed{\\frac{1}{2}}.", reasoning="half of one"))
    if task == 1:
        return Reply(body=completion("<think>2+2 is 5?</think>The answer is \\boxed{5}"))
    if task == 2:
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
        return Reply(body=completion(None, tool_calls=[call], finish="tool_calls"))
    return Reply(body=completion("1, 2, 3, 4", finish="length"))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else {}, captured.err


@dataclass
class ChatRun:
    code: int
    summary: dict[str, Any]
    requests: list[tuple[str, Any]]
    out: Path


@pytest.fixture
def chat_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> ChatRun:
    """4 tasks x 2 repeats through the fake chat endpoint, scored by math-verify."""
    tasks, out = _tasks(tmp_path), tmp_path / "out.jsonl"
    with FakeServer(_chat) as server:
        code, summary, _ = _run(
            ["collect", str(tasks), "-o", str(out), "--base-url", f"{server.url}/v1", "--model", "m",
             "--verifier", "math", "--num-repeats", "2", "--temperature", "0.7", "--max-tokens", "64",
             "--api-key", "sk-test", "--json"], capsys)  # fmt: skip
    return ChatRun(code, summary, server.requests, out)


def test_chat_endpoint_requests_and_summary(chat_run: ChatRun) -> None:
    assert chat_run.code == 0
    summary = chat_run.summary
    assert (summary["tasks"], summary["planned"], summary["written"], summary["failed"]) == (4, 8, 8, 0)
    assert summary["mean_reward"] == 0.25  # task 0 right twice, the others wrong
    assert (summary["requests"], summary["retries"]) == (8, 0)
    # What the endpoint received: converted messages, nested tools, the overrides.
    bodies = {task_of(b): b for p, b in chat_run.requests}
    assert {p for p, _ in chat_run.requests} == {"/v1/chat/completions"}
    assert bodies[0] == {
        "model": "m",
        "messages": [{"role": "system", "content": "Put the answer in \\boxed{}."},
                     {"role": "user", "content": "[t0] What is 1/2 as a decimal?"}],
        "temperature": 0.7,
        "max_tokens": 64,
    }  # fmt: skip
    nested = {k: WEATHER_TOOL[k] for k in ("name", "description", "parameters")}
    assert bodies[2]["tools"] == [{"type": "function", "function": nested}]


def test_chat_endpoint_rows_in_nemo_gym_shape(chat_run: ChatRun) -> None:
    rows = sorted(read_jsonl(chat_run.out), key=lambda r: (r["_ng_task_index"], r["_ng_rollout_index"]))
    assert keys(rows) == {(t, r): 1 for t in range(4) for r in range(2)}
    first = rows[0]
    assert first["responses_create_params"]["temperature"] == 0.7
    assert first["responses_create_params"]["max_output_tokens"] == 64
    assert (first["reward"], first["is_correct"], first["extracted_answer"]) == (1.0, True, "\\frac{1}{2}")
    assert first["metadata"] == {"task_type": "math"} and first["expected_answer"] == "0.5"
    assert [i["type"] for i in first["response"]["output"]] == ["reasoning", "message"]
    assert first["response"]["output"][0]["summary"] == [{"type": "summary_text", "text": "half of one"}]
    assert first["response"]["output"][1]["content"][0]["text"] == "So it is \\boxed{\\frac{1}{2}}."
    assert (rows[2]["reward"], rows[2]["extracted_answer"]) == (0.0, "5")
    assert [i["type"] for i in rows[2]["response"]["output"]] == ["reasoning", "message"]
    assert [i["type"] for i in rows[4]["response"]["output"]] == ["function_call"]
    assert (rows[4]["reward"], rows[4]["extracted_answer"]) == (0.0, None)
    assert rows[6]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_rollforge_reads_collected_rollouts(chat_run: ChatRun) -> None:
    records = list(read_rollouts([str(chat_run.out)]))
    assert not [r for r in records if isinstance(r, Reject)]
    by_task = {r.task_index: r for r in records if isinstance(r, Rollout)}
    answer = {
        "role": "assistant",
        "content": "So it is \\boxed{\\frac{1}{2}}.",
        "reasoning_content": "half of one",
    }
    assert by_task[0].completion == [answer]
    assert by_task[0].task_type == "math"
    assert by_task[1].completion[0]["reasoning_content"] == "2+2 is 5?"
    call = by_task[2].completion[0]["tool_calls"][0]["function"]
    assert call == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert by_task[3].truncated
    assert len({r.prompt_id for r in records if isinstance(r, Rollout)}) == 4


def test_verify_url_scores_with_a_resources_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks, out = _tasks(tmp_path), tmp_path / "out.jsonl"

    def handler(path: str, body: Any) -> Reply:
        if path == "/verify":  # a resources server echoes the request and adds reward + its fields
            return Reply(body={**body, "reward": 0.75, "judge_score": 3})
        return _chat(path, body)

    with FakeServer(handler) as server:
        argv = ["collect", str(tasks), "-o", str(out), "--base-url", server.url, "--model", "m",
                "--verify-url", server.url, "--limit", "2", "--json"]  # fmt: skip
        code, summary, _ = _run(argv, capsys)
    assert code == 0 and summary["written"] == 2 and summary["mean_reward"] == 0.75
    verify_bodies = sorted(
        (b for p, b in server.requests if p == "/verify"), key=lambda b: b["_ng_task_index"]
    )
    assert [b["_ng_task_index"] for b in verify_bodies] == [0, 1]
    assert set(verify_bodies[0]) == {"responses_create_params", "response", "expected_answer", "metadata",
                                     "_ng_task_index", "_ng_rollout_index"}  # fmt: skip
    assert verify_bodies[0]["response"]["output"][1]["type"] == "message"
    rows = read_jsonl(out)
    assert {(r["reward"], r["judge_score"]) for r in rows} == {(0.75, 3)}
    assert all(isinstance(r, Rollout) for r in read_rollouts([str(out)]))


def test_agent_url_posts_rows_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agent = {"name": "simple_agent"}
    tasks = write_jsonl(
        tmp_path / "tasks.jsonl", [task_row(i, f"q{i}", str(i), agent_ref=agent) for i in range(3)]
    )
    out = tmp_path / "rollouts.jsonl"

    def run(path: str, body: Any) -> Reply:
        message = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}
        task = int(body["expected_answer"])
        echo = {k: body[k] for k in ("responses_create_params", "expected_answer")}
        verified = {"response": {"output": [message]}, "reward": task / 2, "extracted_answer": "ok"}
        return Reply(body={**echo, **verified, "_ng_task_index": 99})

    with FakeServer(run) as server:
        code, summary, _ = _run(["collect", str(tasks), "-o", str(out), "--agent-url", server.url,
                                 "--num-repeats", "2", "--concurrency", "3", "--json"], capsys)  # fmt: skip
    assert code == 0 and (summary["written"], summary["mean_reward"]) == (6, 0.5)
    assert server.count("/run") == 6
    sent = sorted(
        (b for _, b in server.requests), key=lambda b: (b["_ng_task_index"], b["_ng_rollout_index"])
    )
    assert sent[3] == {
        **task_row(1, "q1", "1", agent_ref={"name": "simple_agent"}),
        "_ng_task_index": 1,
        "_ng_rollout_index": 1,
    }
    rows = read_jsonl(out)
    assert keys(rows) == {(t, r): 1 for t in range(3) for r in range(2)}  # our indices win over the echoed 99
    assert all(
        r["reward"] == r["_ng_task_index"] / 2 and r["agent_ref"] == {"name": "simple_agent"} for r in rows
    )
    records = list(read_rollouts([str(out)]))
    assert len(records) == 6 and all(isinstance(r, Rollout) for r in records)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--verifier", "math"], "give exactly one of --agent-url, --base-url or --local"),
        (["--base-url", "http://127.0.0.1:1"], "--base-url needs --model"),
        (
            ["--base-url", "http://127.0.0.1:1", "--model", "m"],
            "give exactly one of --verifier or --verify-url",
        ),
        (["--agent-url", "http://127.0.0.1:1", "--verifier", "math"], "an agent server verifies itself"),
    ],
)
def test_option_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    tasks = write_jsonl(tmp_path / "t.jsonl", [task_row(0, "q", "1")])
    assert main(["collect", str(tasks), "-o", str(tmp_path / "o.jsonl"), *argv]) == 1
    assert message in capsys.readouterr().err


def test_task_rows_are_checked_before_any_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = write_jsonl(tmp_path / "t.jsonl", [task_row(0, "q", "1"), task_row(1, "q")])
    argv = [
        "collect",
        str(tasks),
        "-o",
        str(tmp_path / "o.jsonl"),
        "--base-url",
        "http://127.0.0.1:1",
        "--model",
        "m",
    ]
    assert main([*argv, "--verifier", "exact"]) == 1
    assert "1 task rows have no expected_answer (task indices 1...)" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text('{"question": "no params"}\n')
    assert main(["collect", str(tmp_path / "bad.jsonl"), *argv[2:], "--verifier", "none"]) == 1
    assert (
        "bad.jsonl:1: a task row must be a JSON object with a responses_create_params object"
        in capsys.readouterr().err
    )
