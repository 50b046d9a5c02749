"""``rollforge collect``: run tasks against a model and write rollouts in NeMo Gym's own format."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from rollforge import progress
from rollforge.cli.common import add_command, print_json
from rollforge.collect.verify import VERIFIERS

EXAMPLES = """\
  # a model behind vLLM / transformers serve / NIM, scored by math-verify against expected_answer
  rollforge collect tasks.jsonl -o after.jsonl --base-url http://127.0.0.1:8000/v1 --model M \\
      --verifier math --num-repeats 4 --temperature 1.0 --max-tokens 4096
  # scored by a running NeMo Gym resources server instead (its /verify)
  rollforge collect tasks.jsonl -o after.jsonl --base-url http://127.0.0.1:8000/v1 --model M \\
      --verify-url http://127.0.0.1:9001
  # a running NeMo Gym agent server does generation and verification (its /run)
  rollforge collect tasks.jsonl -o rollouts.jsonl --agent-url http://127.0.0.1:9000 --num-repeats 8
  # a small local model (rollforge.tiny, rollforge.toy), sampled in this process in batches: no server
  rollforge collect tasks.jsonl -o after.jsonl --local runs/sft --verifier exact --num-repeats 4 \
      --temperature 1.0 --max-tokens 8
  # finish an interrupted run, retrying what failed (after.jsonl keeps what was done)
  rollforge collect tasks.jsonl -o after.jsonl --base-url http://127.0.0.1:8000/v1 --model M \\
      --verifier math --resume
"""

DESCRIPTION = """\
Run each task row of TASKS (a NeMo Gym dataset JSONL: responses_create_params plus fields such as
expected_answer) --num-repeats times and append each finished rollout to OUT as one complete line, in
NeMo Gym's own format: the task's fields, responses_create_params, response (a Responses object), reward,
_ng_task_index, _ng_rollout_index and verifier fields. Calls failing with 429, 5xx, a timeout or a lost
connection are retried with exponential backoff; rows that still fail go to <stem>_failures.jsonl with
their reason. --resume keeps the rows OUT holds and runs the rest (failed ones included).
<stem>_collect.json records the run: the tasks file (path, sha256), the model and its lineage (the release
it was trained on, when rollforge trained it), sampling and counts; `rollforge compare` reads it.
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "collect",
        help="collect rollouts (NeMo Gym format) from a chat endpoint or a NeMo Gym agent server",
        description=DESCRIPTION,
        examples=EXAMPLES,
    )
    parser.add_argument("tasks", metavar="TASKS", help="task rows (JSONL)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="rollouts file (.jsonl)")
    src = parser.add_argument_group("where rollouts come from (one of)")
    src.add_argument("--agent-url", metavar="URL", help="NeMo Gym agent server: POST each row to URL/run")
    src.add_argument("--base-url", metavar="URL", help="OpenAI-compatible API: POST URL/chat/completions")
    src.add_argument("--model", help="model name for --base-url")
    src.add_argument(
        "--local",
        dest="local_model",
        metavar="MODEL_DIR",
        help="a small local model: generate in this process, a batch of prompts at a time (no server; "
        "~100x faster than HTTP for a tiny model; the reply's text only, no tool-call parsing)",
    )
    src.add_argument(
        "--model-dir",
        metavar="DIR",
        help="the local directory of --model, whose lineage.json (from rollforge train) the run records "
        "(default: --model, when it is a directory, as with transformers serve)",
    )
    src.add_argument(
        "--api-key",
        default=os.environ.get("OPENAI_API_KEY"),
        help="bearer token for --base-url (default: $OPENAI_API_KEY)",
    )
    score = parser.add_argument_group("scoring (with --base-url, one of)")
    score.add_argument(
        "--verifier",
        choices=VERIFIERS,
        help="built-in, against the task's expected_answer: math (math-verify), choice "
        "(letter A-J), exact (normalised string), none (reward 0.0: score later)",
    )
    score.add_argument("--verify-url", metavar="URL", help="NeMo Gym resources server: POST to URL/verify")
    run = parser.add_argument_group("run")
    run.add_argument("--num-repeats", type=int, default=1, metavar="N", help="rollouts per task (default: 1)")
    run.add_argument("--limit", type=int, metavar="N", help="use the first N task rows")
    run.add_argument("--concurrency", type=int, default=8, metavar="N", help="requests at once (default: 8)")
    run.add_argument("--temperature", type=float, help="sampling temperature (overrides the task's)")
    run.add_argument("--max-tokens", type=int, metavar="N", help="max output tokens (overrides the task's)")
    run.add_argument(
        "--batch-size",
        type=int,
        default=64,
        metavar="N",
        help="--local: prompts sampled together (default: 64)",
    )
    run.add_argument("--seed", type=int, default=0, help="--local: sampling seed (default: 0)")
    run.add_argument("--resume", action="store_true", help="keep the rows OUT already holds; run the rest")
    run.add_argument("--overwrite", action="store_true", help="start over when OUT exists")
    run.add_argument(
        "--max-retries",
        type=int,
        default=3,
        metavar="N",
        help="retries on 429, 5xx, timeouts, connection errors (default: 3)",
    )
    run.add_argument(
        "--timeout", type=float, default=300.0, metavar="S", help="seconds per request (default: 300)"
    )
    run.add_argument(
        "--retry-base-delay",
        type=float,
        default=1.0,
        metavar="S",
        help="first backoff (s), doubled each retry, with jitter (default: 1)",
    )
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from rollforge.collect import (  # here, not at the top: `rollforge --help` stays fast
        CollectOptions,
        collect,
    )

    progress.set_quiet(args.quiet or args.json)
    names = (
        "tasks",
        "output",
        "agent_url",
        "base_url",
        "local_model",
        "model",
        "api_key",
        "verifier",
        "verify_url",
        "num_repeats",
        "limit",
        "concurrency",
        "temperature",
        "max_tokens",
        "model_dir",
        "resume",
        "overwrite",
        "max_retries",
        "timeout",
        "retry_base_delay",
        "batch_size",
        "seed",
    )
    summary = collect(CollectOptions(**{name: getattr(args, name) for name in names}))
    for warning in summary.warnings:
        print(f"rollforge: warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(summary.to_json())
    else:
        render(summary, Console())
    if summary.failed:
        hint = "rerun with --resume to retry them"
        print(f"rollforge: {summary.failed} rows failed (see {summary.failures}); {hint}", file=sys.stderr)
        return 1
    return 0


def render(summary: Any, console: Console) -> None:
    s = summary.to_json()
    table = Table(title=f"collect -> {s['output']}", show_header=False, title_justify="left")
    table.add_row("tasks", str(s["tasks"]))
    table.add_row("planned rows (tasks x repeats)", str(s["planned"]))
    if s["already_done"]:
        table.add_row("already in output (--resume)", str(s["already_done"]))
    table.add_row("attempted", str(s["attempted"]))
    table.add_row("written", str(s["written"]))
    table.add_row("failed", str(s["failed"]))
    for reason, n in s["failed_by_reason"].items():
        table.add_row(f"  {reason}", str(n))
    mean = s["mean_reward"]
    table.add_row("mean reward (written now)", "–" if mean is None else f"{mean:.4f}")
    if s["already_done"] and s["finished_mean_reward"] is not None:
        table.add_row("mean reward (all finished)", f"{s['finished_mean_reward']:.4f}")
    table.add_row("requests (retries)", f"{s['requests']} ({s['retries']})")
    console.print(table)
