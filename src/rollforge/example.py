"""A generated example corpus in NeMo Gym's real rollout format, for the demo, the tests and benchmarks.

Three environments, each with several rollouts per task and varied rewards, written in completion order
(shuffled, as NeMo Gym writes them):

- ``tool_calling``: multi-step tool use (system + user, flat tools, reasoning summaries, parallel calls,
  an unanswered final ``submit`` call), with the companion files NeMo Gym writes beside it
  (``_materialized_inputs`` holding the ``metadata`` the rollouts lack, ``_failures``, ``_aggregate_metrics``);
- ``math_reasoning``: single-turn reasoning in all three forms (summary item, inline ``<think>``, a lone
  ``</think>``, hidden/encrypted), some truncated, with token ids and log probs on the model's items as
  RL-collected rollouts carry them, and verifier output echoed back;
- ``support_chat``: multi-turn with simulated-user turns inside ``response.output``, string inputs,
  ``instructions``, a developer message, rewards on a 0-10 scale.

A few bad lines (a placeholder row, an input row with no response, broken JSON, a null reward, an item
type with no chat form) make the accounting visible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from rollforge.errors import RollforgeError
from rollforge.io.atomic import atomic_file

WORDS = [
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "for",
    "on",
    "with",
    "by",
    "from",
    "agent",
    "tool",
    "call",
    "result",
    "value",
    "check",
    "total",
    "order",
    "account",
    "user",
    "report",
    "meeting",
    "email",
    "calendar",
    "invoice",
    "budget",
    "project",
    "deadline",
    "review",
    "draft",
    "update",
    "status",
    "request",
    "number",
    "answer",
    "step",
    "first",
    "then",
    "next",
    "finally",
    "compute",
    "verify",
    "confirm",
    "schedule",
    "search",
    "find",
    "list",
    "send",
    "customer",
    "ticket",
    "refund",
    "policy",
    "plan",
    "option",
    "price",
    "date",
    "time",
    "week",
    "month",
    "quarter",
    "team",
    "manager",
    "data",
    "table",
    "query",
    "record",
    "field",
    "error",
    "retry",
    "success",
    "because",
    "therefore",
    "so",
    "however",
    "also",
    "only",
    "each",
    "every",
]
TOOLS = [
    ("search_records", "Search the records database.", {"query": "string", "limit": "integer"}),
    ("get_calendar", "List calendar events for a date.", {"date": "string"}),
    ("send_email", "Send an email.", {"to": "string", "subject": "string", "body": "string"}),
    ("submit", "Submit the final answer.", {"answer": "string"}),
]
TOOL_TASK_TYPES = ("email", "calendar", "crm")


@dataclass(slots=True)
class _Text:
    """Cheap varied text: sentences drawn from a fixed pool (fast enough to write hundreds of MB)."""

    rng: random.Random
    pool: list[str]

    @classmethod
    def make(cls, rng: random.Random) -> _Text:
        pool = [" ".join(rng.choices(WORDS, k=rng.randint(6, 18))).capitalize() + "." for _ in range(3000)]
        return cls(rng, pool)

    def __call__(self, sentences: int) -> str:
        return " ".join(self.rng.choices(self.pool, k=sentences))

    def fixed(self, key: str, sentences: int) -> str:
        """Text that depends only on ``key``: every repeat of a task sees the same prompt."""
        return " ".join(random.Random(key).choices(self.pool, k=sentences))


def _tools() -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "name": name,
            "description": desc,
            "parameters": {
                "type": "object",
                "properties": {k: {"type": t} for k, t in params.items()},
                "required": list(params)[:1],
            },
            "strict": True,
        }
        for name, desc, params in TOOLS
    ]


def _params(inputs: Any, tools: list[dict[str, Any]] | None = None, instructions: str | None = None) -> dict:
    return {
        "input": inputs,
        "tools": tools or [],
        "instructions": instructions,
        "temperature": 1.0,
        "parallel_tool_calls": True,
        "model": "policy",
        "max_output_tokens": 4096,
    }


def _response(output: list[dict[str, Any]], truncated: bool = False) -> dict[str, Any]:
    return {
        "id": "resp_example",
        "object": "response",
        "created_at": 1.0,
        "model": "policy",
        "output": output,
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "status": "incomplete" if truncated else "completed",
        "usage": None,
    }


def _msg(role: str, text: str) -> dict[str, Any]:
    if role == "assistant":
        return {
            "id": "msg_x",
            "type": "message",
            "role": role,
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
    return {"type": "message", "role": role, "content": text}


def _reasoning(text: str) -> dict[str, Any]:
    return {
        "id": "rs_x",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}],
        "encrypted_content": None,
    }


def _call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": call_id,
        "call_id": call_id,
        "name": name,
        "arguments": orjson.dumps(args).decode(),
        "status": "completed",
    }


def _output(call_id: str, text: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": text, "id": None, "status": None}


def tool_calling_rollout(text: _Text, task: int, repeat: int) -> dict[str, Any]:
    rng = text.rng
    task_type = TOOL_TASK_TYPES[task % len(TOOL_TASK_TYPES)]
    prompt = [
        _msg("system", "You are a workplace assistant. " + text.fixed("tool-system", 20)),
        _msg("user", f"Task {task}: " + text.fixed(f"tool-{task}", 3 + task % 6)),
    ]
    quality = rng.random()
    out: list[dict[str, Any]] = []
    for step in range(rng.randint(1, 4)):
        if rng.random() < 0.6:
            out.append(_reasoning(text(rng.randint(6, 30))))
        n_calls = 2 if rng.random() < 0.25 else 1
        ids = [f"call_{task}_{repeat}_{step}_{i}" for i in range(n_calls)]
        out += [
            _call(i, TOOLS[rng.randrange(3)][0], {"query": text(1), "limit": rng.randint(1, 9)}) for i in ids
        ]
        out += [
            _output(
                i,
                orjson.dumps(
                    {"results": [text(rng.randint(1, 5)) for _ in range(rng.randint(2, 6))]}
                ).decode(),
            )
            for i in ids
        ]
    out.append(_msg("assistant", text(rng.randint(5, 25))))
    if rng.random() < 0.3:  # a final submit the environment never answers
        out.append(_call(f"call_{task}_{repeat}_submit", "submit", {"answer": text(1)}))
    reward = 1.0 if quality > 0.55 else (0.5 if quality > 0.35 else 0.0)
    return {
        "responses_create_params": _params(prompt, _tools()),
        "response": _response(out),
        "reward": reward,
        "_ng_task_index": task,
        "_ng_rollout_index": repeat,
        "agent_ref": {"name": "tool_calling_agent"},
        "task_id": f"tool-{task}",
        "num_tool_calls": sum(1 for o in out if o["type"] == "function_call"),
        "_planned_metadata": {"task_type": task_type, "difficulty": ("easy", "hard")[task % 2]},
    }


def _token_fields(rng: random.Random, n: int) -> dict[str, Any]:
    start = rng.randrange(1000)
    return {
        "prompt_token_ids": list(range(start, start + n // 2)),
        "generation_token_ids": [(start * 7 + i * 13) % 32000 for i in range(n)],
        "generation_log_probs": [-round((i % 17) * 0.0731, 4) for i in range(n)],
    }


def math_rollout(text: _Text, task: int, repeat: int) -> dict[str, Any]:
    rng = text.rng
    a, b = 3 + task * 7 % 97, 5 + task * 11 % 89
    skill = (task % 5) / 5  # some tasks are always solved, some never: not every task yields pairs
    correct = rng.random() < 0.25 + skill * 0.7
    answer = a * b if correct else a * b + rng.randint(1, 9)
    thought, final = text(rng.randint(10, 50)), f"{text(rng.randint(1, 6))} The answer is {answer}."
    shape = rng.randrange(4)
    truncated = rng.random() < 0.05
    if shape == 0:
        out = [_reasoning(thought), _msg("assistant", final)]
    elif shape == 1:
        out = [_msg("assistant", f"<think>{thought}</think>\n\n{final}")]
    elif shape == 2:
        out = [_msg("assistant", f"{thought}\n</think>\n\n{final}")]
    else:
        out = [
            {"id": "rs_h", "type": "reasoning", "summary": [], "encrypted_content": "gAAAA" + "x" * 40},
            _msg("assistant", final),
        ]
    if truncated:
        out, correct = [_reasoning(thought)], False
    out[-1].update(_token_fields(rng, rng.randint(150, 600)))
    return {
        "responses_create_params": _params(
            [_msg("user", f"Compute {a} * {b}. {text.fixed(f'math-{task}', 1)}")]
        ),
        "response": _response(out, truncated),
        "reward": 1.0 if correct else 0.0,
        "_ng_task_index": task,
        "_ng_rollout_index": repeat,
        "agent_ref": {"name": "math_agent"},
        "expected_answer": str(a * b),
        "extracted_answer": None if truncated else str(answer),
        "metadata": {"task_type": "math"},
        "judge_evaluations": [{"verdict": "correct" if correct else "wrong", "explanation": text(3)}],
    }


def support_rollout(text: _Text, task: int, repeat: int) -> dict[str, Any]:
    rng = text.rng
    opening = f"Customer {task}: " + text.fixed(f"support-{task}", 4)
    inputs: Any = (
        opening
        if task % 3 == 0
        else [_msg("developer", "Follow the refund policy."), {"role": "user", "content": opening}]
    )
    out: list[dict[str, Any]] = []
    for turn in range(rng.randint(1, 3)):
        if turn:
            out.append(_msg("user", text(rng.randint(2, 6))))  # the simulated customer speaks
        if rng.random() < 0.3:
            cid = f"call_s{task}_{repeat}_{turn}"
            out += [_call(cid, "search_records", {"query": text(1)}), _output(cid, text(rng.randint(4, 15)))]
        out.append(_msg("assistant", text(rng.randint(4, 15))))
    score = min(10, max(0, round(rng.gauss(4 + task % 4, 2.5))))
    return {
        "responses_create_params": _params(
            inputs, _tools()[:1], "You are a support agent. " + text.fixed("support", 12)
        ),
        "response": _response(out),
        "reward": score / 10,
        "_ng_task_index": task,
        "_ng_rollout_index": repeat,
        "agent_ref": {"name": "support_agent"},
        "domain_name": "support",
        "satisfaction": score,
    }


BAD_LINES = [
    b"<PLACEHOLDER ROW>",
    b'{"responses_create_params": {"input": "an input row that never ran"}, "_ng_task_index": 9999}',
    b'{"responses_create_params": {"input": "cut off mid-line"}, "response": {"output": [',
    b'{"responses_create_params": {"input": "hi"}, "response": {"output": []}, "reward": null}',
    b'{"responses_create_params": {"input": "look it up"}, "response": {"output": '
    b'[{"type": "web_search_call", "id": "ws_1", "status": "completed"}]}, "reward": 1.0}',
]
ENVIRONMENTS = (
    ("tool_calling", tool_calling_rollout),
    ("math_reasoning", math_rollout),
    ("support_chat", support_rollout),
)


def write_example(
    out_dir: str | Path, rollouts: int = 480, repeats: int = 4, seed: int = 0, bad_lines: bool = True
) -> dict[str, int]:
    """Write the example corpus into ``out_dir``: exactly ``rollouts`` rollouts, shared as evenly as can be
    by the environments, ``repeats`` per task (the last task of an environment may have fewer); returns
    rollouts written per file."""
    if rollouts < len(ENVIRONMENTS) or repeats < 1:
        raise RollforgeError(
            f"--rollouts must be at least {len(ENVIRONMENTS)} (one per environment) and --repeats at least 1"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    text = _Text.make(rng)
    counts: dict[str, int] = {}
    for k, (name, make) in enumerate(ENVIRONMENTS):
        wanted = rollouts // len(ENVIRONMENTS) + (k < rollouts % len(ENVIRONMENTS))
        tasks = -(-wanted // repeats)
        keys = [(t, r) for t in range(tasks) for r in range(repeats)][:wanted]
        rng.shuffle(keys)  # completion order, not task order
        planned: list[dict[str, Any]] = []
        with atomic_file(out / f"{name}.jsonl") as fh:
            for i, (task, repeat) in enumerate(keys):
                row = make(text, task, repeat)
                if "_planned_metadata" in row:
                    planned.append(
                        {
                            "responses_create_params": row["responses_create_params"],
                            "task_id": row["task_id"],
                            "metadata": row.pop("_planned_metadata"),
                            "_ng_task_index": task,
                            "_ng_rollout_index": repeat,
                        }
                    )
                fh.write(orjson.dumps(row) + b"\n")
                if bad_lines and name == "support_chat" and i % max(1, len(keys) // len(BAD_LINES)) == 0:
                    fh.write(BAD_LINES[(i // max(1, len(keys) // len(BAD_LINES))) % len(BAD_LINES)] + b"\n")
        counts[name] = len(keys)
        if planned:
            _companions(out, name, planned)
    return counts


def _companions(out: Path, name: str, planned: list[dict[str, Any]]) -> None:
    planned.sort(key=lambda p: (p["_ng_task_index"], p["_ng_rollout_index"]))
    with atomic_file(out / f"{name}_materialized_inputs.jsonl") as fh:
        fh.writelines(orjson.dumps(p) + b"\n" for p in planned)
    with atomic_file(out / f"{name}_failures.jsonl") as fh:
        fh.write(
            orjson.dumps({"_ng_task_index": 0, "_ng_rollout_index": 99, "error": "agent timeout"}) + b"\n"
        )
    with atomic_file(out / f"{name}_aggregate_metrics.json") as fh:
        fh.write(orjson.dumps({"rollouts": len(planned), "note": "written by rollforge example"}))


def heldout_tasks(n: int = 20, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` single-turn math tasks for evaluation with ``rollforge collect``: NeMo Gym input rows
    (``responses_create_params.input``, ``expected_answer``, ``metadata.task_type``; no response).

    None is a prompt of the example corpus: the corpus multiplies numbers below 100, these multiply
    three-digit numbers, and no pair repeats, so every row is its own prompt (its own ``prompt_id``)."""
    rng = random.Random(f"heldout-{seed}")  # a stream of its own: the corpus's output does not move
    pairs: dict[tuple[int, int], None] = {}  # insertion-ordered set: the rows are the same on every run
    while len(pairs) < n:
        pairs[rng.randint(100, 999), rng.randint(100, 999)] = None
    return [
        {
            "responses_create_params": {
                "input": [{"role": "user", "content": f"Compute {a} * {b}. Reply with the number."}]
            },
            "expected_answer": str(a * b),
            "task_id": f"heldout-{i}",
            "metadata": {"task_type": "math"},
        }
        for i, (a, b) in enumerate(pairs)
    ]


def write_heldout_tasks(path: str | Path, n: int = 20, seed: int = 0) -> int:
    """Write :func:`heldout_tasks` to ``path`` as JSONL, the tasks file of ``rollforge collect``; returns
    the rows written."""
    rows = heldout_tasks(n, seed)
    with atomic_file(path) as fh:
        fh.writelines(orjson.dumps(row) + b"\n" for row in rows)
    return len(rows)
