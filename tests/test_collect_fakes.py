"""Fakes for the collect tests: a local HTTP server on 127.0.0.1 (ephemeral port) whose replies a test
scripts per request, and builders for task rows and chat completions. Imported by test_collect*.py."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes -> as is
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # wait this long, then close without replying (the client has timed out by then)
    drop: bool = False  # close the connection without replying


Handler = Callable[[str, Any], Reply]


class FakeServer:
    """``with FakeServer(handler) as server: server.url``; every request is kept in ``server.requests``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw
                with fake.lock:
                    fake.requests.append((self.path, body))
                reply = fake.handler(self.path, body)
                if reply.hang:
                    fake.release.wait(reply.hang)
                    return
                if reply.drop:
                    return
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for key, value in {"content-type": "application/json", **reply.headers}.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and left: expected here

        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


TAG = re.compile(r"\[t(\d+)\]")


def task_of(chat_body: Any) -> int:
    """The task number tagged ``[tN]`` in the last user message of a chat request."""
    text = next(m["content"] for m in reversed(chat_body["messages"]) if m["role"] == "user")
    found = TAG.search(text)
    assert found, text
    return int(found.group(1))


def task_row(i: int, question: str, expected: str | None = None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "responses_create_params": {
            "input": [{"role": "user", "content": f"[t{i}] {question}"}],
            "tools": [],
        },
        **extra,
    }
    if expected is not None:
        row["expected_answer"] = expected
    return row


def completion(
    content: str | None = "",
    reasoning: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    finish: str = "stop",
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def keys(rows: list[dict[str, Any]]) -> Counter:
    return Counter((r["_ng_task_index"], r["_ng_rollout_index"]) for r in rows)


def test_fake_server_scripts_replies() -> None:
    import httpx

    with FakeServer(lambda path, body: Reply(201, {"path": path, "echo": body})) as server:
        reply = httpx.post(f"{server.url}/x", json={"a": 1})
    assert (reply.status_code, reply.json()) == (201, {"path": "/x", "echo": {"a": 1}})
    assert server.requests == [("/x", {"a": 1})]
