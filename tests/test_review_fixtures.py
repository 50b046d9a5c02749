"""Rollouts the review tests share: hostile ones (script injection everywhere rollout text can go) and a
1 MB one with hundreds of items. Plain helpers, no tests; imported by test_review_* and tests/browser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click me](javascript:alert(1))",
    "javascript:alert(1)",
    '"><svg onload=alert(1)>',
    "</textarea><img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">link</a>',
]
PAYLOAD = "  ".join(XSS)
HOSTILE_FILE = "hostile <img src=x onerror=alert(1)>.jsonl"  # the file name is shown too


def _msg(role: str, text: str) -> dict[str, Any]:
    if role == "assistant":
        return {"type": "message", "role": role, "content": [{"type": "output_text", "text": text}]}
    return {"type": "message", "role": role, "content": text}


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def _output(call_id: str, text: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def _rollout(
    inputs: list[dict[str, Any]], output: list[dict[str, Any]], reward: float, **fields: Any
) -> dict:
    tools = [{"type": "function", "name": PAYLOAD, "description": PAYLOAD, "parameters": {"type": "object"}}]
    return {
        "responses_create_params": {"input": inputs, "tools": tools},
        "response": {"output": output},
        "reward": reward,
        **fields,
    }


def hostile_rows() -> list[dict[str, Any]]:
    """Three rollouts carrying the payloads in every place rollout text can reach the page."""
    image = {"type": "input_image", "image_url": "javascript:alert(1)"}
    svg = {"type": "input_image", "image_url": "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+"}
    user_parts = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": PAYLOAD}, image, svg],
    }
    reasoning = {"type": "reasoning", "summary": [{"type": "summary_text", "text": PAYLOAD}]}
    good_args = json.dumps({"query": PAYLOAD, PAYLOAD: 1})
    return [
        _rollout(
            [_msg("system", PAYLOAD), user_parts],
            [
                reasoning,
                _call('c1"><script>alert(1)</script>', PAYLOAD, good_args),
                _call("c2", "<img src=x onerror=alert(1)>", PAYLOAD),  # arguments that are not JSON
                _output('c1"><script>alert(1)</script>', "\n".join([PAYLOAD] * 60)),  # long: cut, expandable
                _output("c2", json.dumps({"html": PAYLOAD})),
                _msg("user", PAYLOAD),  # an environment turn inside the output
                _msg("assistant", PAYLOAD),
            ],
            0.9,
            metadata={"task_type": "<script>alert('task')</script>", PAYLOAD: PAYLOAD},
            **{"<script>alert(2)</script>": "<img src=x onerror=alert(2)>", "note": PAYLOAD},
        ),
        _rollout(
            [_msg("user", "plain question " + PAYLOAD)],
            [_msg("assistant", "<think>" + PAYLOAD + "</think>" + PAYLOAD)],
            0.1,
        ),
        _rollout(
            [_msg("user", "short")], [_msg("assistant", "ok javascript:alert(1)")], 0.6, task_type=PAYLOAD
        ),
    ]


def write_hostile(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / HOSTILE_FILE
    path.write_text("".join(json.dumps(row) + "\n" for row in hostile_rows()))
    return path


ENCRYPTED = {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB" + "x" * 80}
HIDDEN = {"type": "reasoning", "summary": [], "encrypted_content": None}
FORECAST = {"city": "Lyon", "days": [{"day": "Sat", "high": 24}, {"day": "Sun", "high": 19}]}


def view_rows() -> list[dict[str, Any]]:
    """Shapes the conversation view must show well: tool outputs that are JSON strings (an object encoded
    twice, a plain text encoded once), arguments encoded twice, encrypted and hidden reasoning attached to a
    turn, alone between turns and alone at the end."""
    tools = [
        {"type": "function", "name": "get_forecast", "parameters": {"type": "object"}},
        {"type": "function", "name": "get_air_quality", "parameters": {"type": "object"}},
    ]
    answer = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Saturday."}],
    }
    json_tools = {
        "responses_create_params": {
            "input": [_msg("user", "Which day is better for a ride in Lyon?")],
            "tools": tools,
        },
        "response": {
            "output": [
                ENCRYPTED,
                _call("c1", "get_forecast", json.dumps({"city": "Lyon"})),
                _output("c1", json.dumps(json.dumps(FORECAST))),
                ENCRYPTED,
                _call("c2", "get_air_quality", json.dumps(json.dumps({"city": "Lyon"}))),
                _output("c2", json.dumps("AQI 31 (good)\nPM2.5 7")),
                HIDDEN,
                answer,
            ]
        },
        "reward": 1.0,
        "metadata": {"task_type": "views"},
    }
    alone = {
        "responses_create_params": {"input": [_msg("user", "Think twice.")]},
        "response": {
            "output": [
                _msg("assistant", "First answer."),
                _msg("user", "Are you sure?"),
                ENCRYPTED,  # a turn of reasoning alone, then the environment speaks again
                _msg("user", "Hello?"),
                _msg("assistant", "Yes."),
                _msg("user", "Thanks."),
                HIDDEN,  # the last turn: reasoning alone
            ]
        },
        "reward": 0.5,
        "metadata": {"task_type": "views"},
    }
    return [json_tools, alone]


def surrogate_row() -> dict[str, Any]:
    """Lone surrogates where a rollout line can carry them: inside the JSON text of tool arguments and tool
    outputs (the line itself is valid JSON; the inner texts decode to lone surrogates)."""
    return {
        "responses_create_params": {"input": [_msg("user", "surrogates")]},
        "response": {
            "output": [
                _call("c1", "lookup", json.dumps({"q": "\ud800 lone high", "k": "\udfff"})),
                _output("c1", json.dumps({"found": "\udc00 lone low"})),
                _call("c2", "lookup", json.dumps({"q": "ok"})),
                _output("c2", json.dumps(json.dumps("\ud83d half an emoji"))),
                _msg("assistant", "done"),
            ]
        },
        "reward": 1.0,
    }


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def big_row(target_bytes: int = 1_050_000, steps: int = 150) -> dict[str, Any]:
    """One rollout of about ``target_bytes`` with ``steps`` tool round trips (300+ items) and one very long
    tool output."""
    out: list[dict[str, Any]] = []
    long_output = "\n".join(f"line {i}: " + "data " * 30 for i in range(2000))  # ~300 kB, 2000 lines
    per_step = max(300, (target_bytes - len(long_output)) // steps - 300)  # ~300 bytes of item framing
    for step in range(steps):
        out.append({"type": "reasoning", "summary": [{"type": "summary_text", "text": "think " * 20}]})
        out.append(
            _call(f"call_{step}", "search", json.dumps({"query": "q" * (per_step // 3), "step": step}))
        )
        text = long_output if step == 3 else json.dumps({"rows": ["row " * 10] * (per_step * 2 // 3 // 48)})
        out.append(_output(f"call_{step}", text))
    out.append(_msg("assistant", "done"))
    return _rollout(
        [_msg("system", "You are a tool agent."), _msg("user", "Find it.")], out, 1.0, task_id="big"
    )


def write_big(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "big.jsonl"
    path.write_text(json.dumps(big_row()) + "\n")
    return path


def start_server(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    """``rollforge review ARGS --port 0`` in a subprocess; returns it and the base URL it printed."""
    cmd = [sys.executable, "-m", "rollforge.cli.main", "review", *args, "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the server prints one line when it listens, or exits on an error
    match = re.match(r"serving (http://\S+/)", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"review server did not start: {line!r} {proc.communicate()[1]!r}")
    return proc, match.group(1).split("?")[0]


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Tags(HTMLParser):
    """Every element of a page with its attributes, and the text of each text block (.text, .args, .json)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.blocks: list[str] = []
        self._open: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "div" and dict(attrs).get("class") in ("text", "args", "json"):
            self._open = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._open is not None:
            self.blocks.append("".join(self._open))
            self._open = None

    def injected(self) -> list[str]:
        """Elements or attributes that only an injection could have put there."""
        found = []
        for tag, attrs in self.tags:
            if tag == "script" and attrs.get("src") != "/static/review.js":
                found.append(f"script {attrs}")
            if tag in ("svg", "iframe", "object", "embed") or (tag == "img" and attrs.get("src") == "x"):
                found.append(f"{tag} {attrs}")
            found += [f"{tag} {name}" for name in attrs if name.startswith("on")]
            if (attrs.get("href") or "").strip().lower().startswith("javascript"):
                found.append(f"{tag} href={attrs['href']}")
        return found
