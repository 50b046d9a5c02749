"""Computing a report: stream SFT rows and DPO pairs through a :class:`ReportBuilder`, then judge them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import xxhash

from rollforge.errors import RollforgeError
from rollforge.identity import prompt_id
from rollforge.report.checks import evaluate
from rollforge.report.data import ReportData, TokenInfo
from rollforge.report.environments import EnvFigures
from rollforge.report.metrics import UNSPLIT, DpoPart, SftPart
from rollforge.report.rows import message_text, parse_tools
from rollforge.report.samples import SampleRows, render_samples
from rollforge.report.thresholds import thresholds
from rollforge.report.tokens import token_counter

Row = Mapping[str, Any]
# A row alone (unsplit), or (split name, row) for rows read from a named split such as "train".
RowItem = Row | tuple[str, Row]


def _prompt_id(row: Row, prompt: list[dict[str, Any]]) -> str:
    """The row's ``prompt_id``; rows exported without one get the same hash rollforge gives prompts."""
    given = row.get("prompt_id")
    return str(given) if given is not None else prompt_id(prompt, parse_tools(row.get("tools")))


def _sft_prompt(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for i, m in enumerate(messages):
        if m.get("role") == "assistant":
            return messages[:i]
    return messages


class ReportBuilder:
    """Accumulates a report row by row; :meth:`finish` returns the :class:`ReportData`.

    Use it directly to feed rows from several places; :func:`compute_report` wraps it for iterables.
    """

    def __init__(self, *, tokenizer: str | None = None, max_tokens: int | None = None) -> None:
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive number of tokens, got {max_tokens}")
        # What a twin builder (reading other files in another process) is made with.
        self.options: dict[str, Any] = {"tokenizer": tokenizer, "max_tokens": max_tokens}
        self.counter = token_counter(tokenizer)
        self.max_tokens = max_tokens
        self.sft = SftPart()
        self.dpo = DpoPart()
        self.samples = SampleRows()  # a few rows, shown as the model sees them
        self.envs = EnvFigures()  # per environment (rollforge.report.environments)
        self._prompts: dict[str, set[str]] = {}  # split -> prompt ids
        # split -> hashes of the prompts' user text: the overlap between splits. Not the prompt ids, which a
        # release splits by (so they never overlap): the same question under another system prompt or tool
        # list is another prompt id, and the same task for the model.
        self._asked: dict[str, set[int]] = {}

    def merge(self, other: ReportBuilder) -> None:
        """Add the rows a twin builder (same options) read after this one's: the result is as if this
        builder had read them itself."""
        self.sft.merge(other.sft)
        self.dpo.merge(other.dpo)
        self.samples.merge(other.samples)
        self.envs.merge(other.envs)
        for split, ids in other._prompts.items():
            self._prompts.setdefault(split, set()).update(ids)
        for split, asked in other._asked.items():
            self._asked.setdefault(split, set()).update(asked)
        self.counter.template_errors += other.counter.template_errors

    def _over(self, tokens: int) -> bool:
        return self.max_tokens is not None and tokens > self.max_tokens

    def add_sft(self, row: Row, split: str = UNSPLIT) -> None:
        messages = row.get("messages") or []
        tokens = self.counter.count(messages, row.get("tools"))
        self.sft.add(row, split, tokens, self._over(tokens))
        self.samples.add(row, split)
        self.envs.add_sft(row, tokens)
        prompt = _sft_prompt(messages)
        self._prompts.setdefault(split, set()).add(_prompt_id(row, prompt))
        self._ask(split, prompt)

    def add_dpo(self, row: Row, split: str = UNSPLIT) -> None:
        prompt = row.get("prompt") or []
        tools = row.get("tools")
        chosen = self.counter.count([*prompt, *(row.get("chosen") or [])], tools)
        rejected = self.counter.count([*prompt, *(row.get("rejected") or [])], tools)
        pid = _prompt_id(row, prompt)
        self.dpo.add(row, split, pid, (chosen, rejected), self._over(max(chosen, rejected)))
        self.envs.add_dpo(row, max(chosen, rejected))
        self._prompts.setdefault(split, set()).add(pid)
        self._ask(split, prompt)

    def _ask(self, split: str, prompt: list[dict[str, Any]]) -> None:
        text = " ".join(" ".join(message_text(m).lower().split()) for m in prompt if m.get("role") == "user")
        if text:
            self._asked.setdefault(split, set()).add(xxhash.xxh3_64_intdigest(text.encode()))

    def finish(
        self,
        *,
        sources: list[str] | None = None,
        splits: dict[str, str] | None = None,
        manifest: dict[str, Any] | None = None,
        accounting: dict[str, Any] | None = None,
    ) -> ReportData:
        """The report. ``accounting`` (lines/rollouts/rejected of rollouts read) is used when no manifest is."""
        self.sft.finish()
        train, validation = self._asked.get("train", set()), self._asked.get("validation", set())
        if manifest is not None and isinstance(manifest.get("accounting"), dict):
            accounting = manifest["accounting"]
        data = ReportData(
            sft=self.sft,
            dpo=self.dpo,
            tokens=TokenInfo(
                self.counter.method, self.counter.label, self.max_tokens, self.counter.template_errors
            ),
            sources=list(sources or []),
            splits=dict(splits or {}),
            prompts=len(set().union(*self._prompts.values())),
            shared_prompts=len(train & validation),
            accounting=accounting,
            manifest=manifest,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            thresholds=thresholds(
                ((manifest or {}).get("recipe") or {}).get("checks")
            ),  # as the build judged
        )
        data.samples_rendered_with, data.samples = render_samples(
            self.samples, getattr(self.counter, "tokenizer", None)
        )
        data.environments = self.envs
        data.checks = evaluate(data)
        return data


def _split_rows(items: Iterable[RowItem]) -> Iterable[tuple[str, Row]]:
    for item in items:
        split, row = item if isinstance(item, tuple) else (UNSPLIT, item)
        if not isinstance(row, Mapping):
            raise RollforgeError(f"a report row must be a JSON object, got {type(row).__name__}")
        yield split, row


def compute_report(
    sft_rows: Iterable[RowItem] | None,
    dpo_rows: Iterable[RowItem] | None,
    *,
    splits: dict[str, str] | None = None,
    manifest: dict[str, Any] | None = None,
    tokenizer: str | None = None,
    max_tokens: int | None = None,
    sources: list[str] | None = None,
) -> ReportData:
    """Every number of the validation report, streaming over SFT rows and DPO pairs (TRL's released shapes).

    Each item is a row, or a ``(split, row)`` tuple naming the split it was read from ("train",
    "validation"). ``splits`` declares the splits the data is meant to have (split name -> where its rows
    live, shown in the report), so an empty one is reported rather than unseen. ``manifest`` is a release's
    manifest.json: its accounting fills the size section and its row counts are checked against the rows.
    ``tokenizer`` is a local tokenizer directory (tokens by its chat template); without one, token counts
    are an estimate (characters / 4) and labelled so. ``max_tokens`` counts rows over that length.
    """
    builder = ReportBuilder(tokenizer=tokenizer, max_tokens=max_tokens)
    for split, row in _split_rows(sft_rows or ()):
        builder.add_sft(row, split)
    for split, row in _split_rows(dpo_rows or ()):
        builder.add_dpo(row, split)
    return builder.finish(sources=sources, splits=splits, manifest=manifest)
