"""``collect``: run every planned (task, repeat) once, write each finished rollout as one line.

Every planned key ends in exactly one place: a line of OUT (completion order, like NeMo Gym), or a line of
``<stem>_failures.jsonl`` with its stage, reason and attempts. The failures file holds the failures of the
latest run only: ``--resume`` retries every key not in OUT, so older failures are either fixed or failed
again. Concurrency is a fixed pool of ``concurrency`` workers pulling keys from one iterator: at most that
many requests are in flight, and memory does not grow with the number of tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from rollforge import progress
from rollforge.collect.client import JsonClient, RetryPolicy
from rollforge.collect.modes import AgentMode, ChatMode, StageFailed
from rollforge.collect.output import Existing, LineAppender, failure_row, scan
from rollforge.collect.tasks import Key, load_tasks, planned_row, require_field
from rollforge.collect.verify import VERIFIERS
from rollforge.errors import RollforgeError, missing_extra
from rollforge.io.lock import output_lock
from rollforge.io.sources import split_name
from rollforge.io.target import check_output
from rollforge.lineage import collect_record_path, model_info, tasks_info, write_collect_record
from rollforge.workers import worker_pool


@dataclass(slots=True)
class CollectOptions:
    tasks: str
    output: str
    agent_url: str | None = None  # mode 1: a NeMo Gym agent server
    base_url: str | None = None  # mode 2: an OpenAI-compatible chat endpoint (".../v1") ...
    local_model: str | None = None  # mode 3: a small local model, generating in this process ...
    model: str | None = None
    api_key: str | None = None
    verifier: str | None = None  # ... scored by a built-in verifier ...
    verify_url: str | None = None  # ... or by a NeMo Gym resources server
    num_repeats: int = 1
    limit: int | None = None
    concurrency: int = 8
    temperature: float | None = None
    max_tokens: int | None = None
    model_dir: str | None = None  # the local directory of --model (its lineage.json), when not --model itself
    resume: bool = False
    overwrite: bool = False
    max_retries: int = 3
    timeout: float = 300.0
    retry_base_delay: float = 1.0
    max_retry_delay: float = 60.0
    batch_size: int = 64  # --local: prompts sampled together
    seed: int = 0  # --local: the sampling seed

    def __post_init__(self) -> None:
        if sum(map(bool, (self.agent_url, self.base_url, self.local_model))) != 1:
            raise RollforgeError("give exactly one of --agent-url, --base-url or --local")
        if self.local_model and self.verify_url:
            raise RollforgeError("--local scores with a built-in --verifier, not --verify-url")
        if self.local_model and not self.verifier:
            raise RollforgeError("--local needs --verifier", hint=f"one of {', '.join(VERIFIERS)}")
        if self.base_url and not self.model:
            raise RollforgeError("--base-url needs --model", hint="the model name the endpoint serves")
        if self.agent_url and (self.verifier or self.verify_url):
            raise RollforgeError(
                "--verifier/--verify-url apply to --base-url; an agent server verifies itself"
            )
        if self.base_url and bool(self.verifier) == bool(self.verify_url):
            raise RollforgeError(
                "with --base-url, give exactly one of --verifier or --verify-url",
                hint=f"--verifier {'|'.join(VERIFIERS)}, or --verify-url http://HOST:PORT (resources server)",
            )
        if self.verifier and self.verifier not in VERIFIERS:
            raise RollforgeError(
                f"unknown --verifier {self.verifier!r}", hint=f"one of {', '.join(VERIFIERS)}"
            )
        for name in ("num_repeats", "concurrency", "batch_size"):
            if getattr(self, name) < 1:
                raise RollforgeError(f"--{name.replace('_', '-')} must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise RollforgeError("--limit must be at least 1")
        if self.max_retries < 0 or self.timeout <= 0:
            raise RollforgeError("--max-retries must be >= 0 and --timeout > 0")
        if self.output == "-":
            raise RollforgeError(
                "collect cannot write to standard output",
                hint="it appends to a file it can --resume from, with <stem>_failures.jsonl beside it: pass -o FILE.jsonl",
            )
        if split_name(self.output)[1] != ".jsonl":
            raise RollforgeError(
                f"output {self.output} must end in .jsonl", hint="collect writes plain JSONL"
            )
        if self.resume and self.overwrite:
            raise RollforgeError("--resume and --overwrite exclude each other")

    @property
    def failures_path(self) -> str:
        return split_name(self.output)[0] + "_failures.jsonl"

    def mode(self) -> AgentMode | ChatMode:
        if self.agent_url:
            return AgentMode(self.agent_url)
        return ChatMode(str(self.base_url), str(self.model), self.api_key, self.verifier, self.verify_url)

    def overrides(self) -> dict[str, Any]:
        """responses_create_params overrides, recorded in each row as NeMo Gym records its own."""
        out: dict[str, Any] = {}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.max_tokens is not None:
            out["max_output_tokens"] = self.max_tokens
        return out


@dataclass(slots=True)
class CollectSummary:
    output: str
    failures: str
    tasks: int
    planned: int
    already_done: int = 0  # keys found finished in OUT (--resume)
    attempted: int = 0
    written: int = 0
    failed_by_reason: Counter = field(default_factory=Counter)
    failed_by_stage: Counter = field(default_factory=Counter)
    reward_sum: float = 0.0
    done_reward_sum: float = 0.0  # rewards of the already-finished keys
    requests: int = 0
    retries: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failed_by_reason.values())

    def to_json(self) -> dict[str, Any]:
        finished = self.already_done + self.written
        return {
            "output": self.output,
            "failures_file": self.failures,
            "tasks": self.tasks,
            "planned": self.planned,
            "already_done": self.already_done,
            "attempted": self.attempted,
            "written": self.written,
            "failed": self.failed,
            "failed_by_reason": dict(self.failed_by_reason.most_common()),
            "failed_by_stage": dict(self.failed_by_stage.most_common()),
            "mean_reward": self.reward_sum / self.written if self.written else None,
            "finished": finished,
            "finished_mean_reward": (self.reward_sum + self.done_reward_sum) / finished if finished else None,
            "requests": self.requests,
            "retries": self.retries,
            "warnings": self.warnings,
        }


def collect(options: CollectOptions) -> CollectSummary:
    """Run the plan (tasks x repeats) minus what OUT already holds; see the module docstring."""
    for written in (options.output, options.failures_path, str(collect_record_path(options.output))):
        check_output(written, [options.tasks])
    tasks = load_tasks(options.tasks, options.limit)
    if options.verifier and options.verifier != "none":
        require_field(tasks, "expected_answer", f"--verifier {options.verifier} compares the answer with it")
    planned = [(t, r) for t in range(len(tasks)) for r in range(options.num_repeats)]
    summary = CollectSummary(options.output, options.failures_path, len(tasks), len(planned))
    with output_lock(options.output, "collect"):  # two runs on one output would write every row twice
        _collect(options, tasks, planned, summary)
        # Written last, so a run refused at the start never replaces the record of the rows OUT holds.
        write_collect_record(
            options.output, {**run_record(options, len(tasks)), "summary": summary.to_json()}
        )
    return summary


def run_record(options: CollectOptions, rows: int) -> dict[str, Any]:
    """What ``<stem>_collect.json`` says of this run (rollforge.lineage): task set, model, how it sampled."""
    return {
        "output": os.path.abspath(options.output),
        "tasks": tasks_info(options.tasks, rows, options.limit),
        "model": model_info(options.model or options.local_model, options.model_dir or options.local_model),
        "source": {
            "agent_url": options.agent_url,
            "base_url": options.base_url,
            "local_model": options.local_model,
            "verifier": options.verifier,
            "verify_url": options.verify_url,
        },
        "num_repeats": options.num_repeats,
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
    }


def _collect(
    options: CollectOptions, tasks: list[dict[str, Any]], planned: list[Key], summary: CollectSummary
) -> None:
    existing = _prepare_output(options, summary)
    planned_set = set(planned)
    done = existing.keys & planned_set
    summary.already_done = len(done)
    summary.done_reward_sum = sum(existing.rewards.get(k, 0.0) for k in done)
    if len(existing.keys) > len(done):
        summary.warnings.append(
            f"{len(existing.keys) - len(done)} rows of {options.output} are outside this plan "
            "(another --limit or --num-repeats?); kept as they are"
        )
    todo = [k for k in planned if k not in done]
    if options.local_model:
        from rollforge.collect.local import LocalJob, run_local

        job = LocalJob(options.local_model, options.verifier or "none", options.overrides(), options.output,
                       options.failures_path, options.batch_size, options.seed)  # fmt: skip
        run_local(job, tasks, todo, summary)
    else:
        asyncio.run(_run(options, tasks, todo, summary))


def _prepare_output(options: CollectOptions, summary: CollectSummary) -> Existing:
    path = options.output
    if options.resume:
        existing = scan(path)
        if existing.dropped_partial:
            summary.warnings.append(
                f"dropped a partial last line ({existing.dropped_partial} bytes) of {path}, left by an "
                "interrupted write; its row is collected again"
            )
        if existing.unreadable:
            summary.warnings.append(
                f"{existing.unreadable} lines of {path} are not rollouts with _ng_ indices"
            )
        return existing
    if os.path.exists(path) and os.path.getsize(path) > 0 and not options.overwrite:
        raise RollforgeError(
            f"{path} already exists", hint="pass --resume to finish that run, or --overwrite to start over"
        )
    LineAppender(path, truncate=True).close()
    return Existing()


@contextlib.contextmanager
def _verifier_processes(options: CollectOptions) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes for math-verify: SymPy can take seconds per answer, which must not stall the event
    loop (every in-flight request's deadline keeps running), and its SIGALRM timeouts need a main thread.
    The other verifiers take microseconds and run inline."""
    if options.verifier != "math":
        yield None
        return
    try:  # imported here first: forked workers inherit it, and a missing package fails before any request
        import math_verify  # noqa: F401
    except ImportError:
        raise missing_extra("math-verify", "eval") from None
    with worker_pool(max(1, min(options.concurrency, os.cpu_count() or 1))) as pool:  # they die with us
        yield pool


async def _run(
    options: CollectOptions, tasks: list[dict[str, Any]], todo: list[Key], summary: CollectSummary
) -> None:
    overrides = options.overrides()
    policy = RetryPolicy(
        options.max_retries, options.timeout, options.retry_base_delay, options.max_retry_delay
    )
    limits = httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=options.concurrency)
    pending = iter(todo)  # shared by the workers: each key is taken once
    async with httpx.AsyncClient(timeout=httpx.Timeout(options.timeout, pool=None), limits=limits) as client:
        http = JsonClient(client, policy)
        with (
            _verifier_processes(options) as processes,
            LineAppender(options.output) as out,
            LineAppender(options.failures_path, truncate=True) as failures,
            progress.progress_bar() as bar,
        ):
            bar_task = bar.add_task("collecting", total=len(todo), unit="rollouts")
            mode = options.mode()
            if processes is not None and isinstance(mode, ChatMode):
                mode = dataclasses.replace(mode, executor=processes)

            async def worker() -> None:
                for key in pending:
                    row = planned_row(tasks[key[0]], key, overrides)
                    summary.attempted += 1
                    try:
                        result = await mode.rollout(http, row)
                    except StageFailed as exc:
                        failure = exc.failure
                        failures.write(
                            failure_row(key, exc.stage, failure.reason, failure.message, failure.attempts)
                        )
                        summary.failed_by_reason[exc.failure.reason] += 1
                        summary.failed_by_stage[exc.stage] += 1
                    else:
                        out.write(result)
                        summary.written += 1
                        summary.reward_sum += float(result["reward"])
                    bar.update(bar_task, advance=1, description=f"collecting ({summary.failed} failed)")

            async with asyncio.TaskGroup() as group:
                for _ in range(min(options.concurrency, len(todo))):
                    group.create_task(worker())
        summary.requests, summary.retries = http.stats.requests, http.stats.retries
