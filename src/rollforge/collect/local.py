"""``collect --local MODEL_DIR``: generate in this process, a batch of prompts at a time, for small models.

Through HTTP every sample is one request, and `transformers serve` generates one at a time: for a tiny model
the server's overhead is nearly all of the time. Here the prompts of a batch are rendered with the model's
chat template, left-padded and sampled together by ``model.generate`` (about 100x faster for rollforge.tiny's
models). Each completion goes through the same path as a served one (a Chat Completions body ->
:func:`chat_to_response` -> the built-in verifier), so the rollouts file is the same: same fields, same
shapes, same failures file and ``--resume``. The text is the model's ``content``: no tool-call parser runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rollforge import progress
from rollforge.collect.output import LineAppender, failure_row
from rollforge.collect.responses import assistant_text, chat_to_response
from rollforge.collect.tasks import Key, planned_row
from rollforge.collect.verify import verify
from rollforge.convert import Unconvertible, convert_prompt
from rollforge.errors import RollforgeError, missing_extra

DEFAULT_MAX_TOKENS = 64


def _batches(keys: list[Key], size: int) -> Iterator[list[Key]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


class LocalGenerator:
    """A model and tokenizer loaded once; ``complete(messages)`` samples one chat completion per prompt."""

    def __init__(self, model_dir: str, seed: int) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise missing_extra(exc.name or "transformers", "train") from exc
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            self.model = AutoModelForCausalLM.from_pretrained(model_dir)
        except OSError as exc:
            raise RollforgeError(
                f"cannot load the model in {model_dir}", hint="--local takes a local model directory"
            ) from exc
        if not self.tokenizer.chat_template:
            raise RollforgeError(f"the tokenizer of {model_dir} has no chat template to render prompts with")
        self.tokenizer.padding_side = "left"  # generation continues every row from its last prompt token
        self.model.eval()
        self.torch = torch
        torch.manual_seed(seed)

    def complete(
        self, prompts: list[tuple[list[Any], list[Any]]], params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Chat Completions bodies for ``(messages, tools)`` prompts, sampled with ``params`` (Responses create
        params: temperature, top_p, max_output_tokens)."""
        tok = self.tokenizer
        texts = [
            tok.apply_chat_template(messages, tools=tools or None, add_generation_prompt=True, tokenize=False)
            for messages, tools in prompts
        ]
        batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        temperature = params.get("temperature")
        sample = temperature is None or temperature > 0
        settings: dict[str, Any] = {
            "do_sample": sample,
            "max_new_tokens": params.get("max_output_tokens") or DEFAULT_MAX_TOKENS,
        }
        if sample:
            settings |= {"temperature": temperature or 1.0, "top_p": params.get("top_p") or 1.0, "top_k": 0}
        with self.torch.no_grad():
            out = self.model.generate(**batch, **settings, pad_token_id=tok.pad_token_id)
        width = batch["input_ids"].shape[1]
        return [
            self._completion(row[width:], int(mask.sum()))
            for row, mask in zip(out, batch["attention_mask"], strict=True)
        ]

    def _completion(self, new_tokens: Any, prompt_tokens: int) -> dict[str, Any]:
        tok = self.tokenizer
        ids = new_tokens.tolist()
        stopped = tok.eos_token_id in ids
        if stopped:
            ids = ids[: ids.index(tok.eos_token_id)]
        ids = [i for i in ids if i != tok.pad_token_id]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model.name_or_path,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": tok.decode(ids, skip_special_tokens=True)},
                    "finish_reason": "stop" if stopped else "length",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(ids) + stopped,
                "total_tokens": prompt_tokens + len(ids) + stopped,
            },
        }


@dataclass(frozen=True, slots=True)
class LocalJob:
    """What ``collect --local`` was asked (the parts of CollectOptions it reads)."""

    model_dir: str
    verifier: str
    overrides: dict[str, Any]
    output: str
    failures_path: str
    batch_size: int
    seed: int


def run_local(job: LocalJob, tasks: list[dict[str, Any]], todo: list[Key], summary: Any) -> None:
    """Generate and score every key of ``todo`` in batches, counting in ``summary`` (the runner's
    CollectSummary); each finished rollout is appended at once."""
    generator = LocalGenerator(job.model_dir, job.seed)
    with (
        LineAppender(job.output) as out,
        LineAppender(job.failures_path, truncate=True) as failures,
        progress.progress_bar() as bar,
    ):
        bar_task = bar.add_task("generating", total=len(todo))
        for keys in _batches(todo, job.batch_size):
            rows, prompts = [], []
            for key in keys:
                row = planned_row(tasks[key[0]], key, job.overrides)
                summary.attempted += 1
                try:
                    prompts.append(convert_prompt(row["responses_create_params"]))
                except Unconvertible as exc:
                    failures.write(failure_row(key, "prompt", exc.reason, exc.message, 0))
                    summary.failed_by_reason[exc.reason] += 1
                    summary.failed_by_stage["prompt"] += 1
                    continue
                rows.append(row)
            if rows:  # one batch samples with one setting: the first row's (--temperature sets them all)
                completions = generator.complete(prompts, rows[0]["responses_create_params"])
                for row, completion in zip(rows, completions, strict=True):
                    result = _scored(row, completion, job)
                    out.write(result)
                    summary.written += 1
                    summary.reward_sum += float(result["reward"])
            bar.update(bar_task, advance=len(keys))
    summary.requests = summary.attempted


def _scored(row: dict[str, Any], completion: dict[str, Any], job: LocalJob) -> dict[str, Any]:
    """The rollout line: the planned row, its response, the verifier's fields."""
    response = chat_to_response(completion, job.model_dir)
    verdict = verify(job.verifier, assistant_text(response), row.get("expected_answer"))
    return {**row, "response": response, **(verdict.fields() if verdict else {"reward": 0.0})}
