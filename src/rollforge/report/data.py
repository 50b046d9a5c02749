"""``ReportData``: every number of a validation report, and the checklist judged from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rollforge.report.environments import EnvFigures
from rollforge.report.lengths import sequence_length
from rollforge.report.metrics import UNSPLIT, DpoPart, SftPart, normalised_entropy, share
from rollforge.report.thresholds import thresholds

PASS, WARN, NOT_APPLICABLE = "pass", "warn", "n/a"


@dataclass(frozen=True, slots=True)
class Check:
    """One item of the pre-training checklist. ``threshold`` states the rule; ``detail`` the numbers."""

    name: str
    title: str
    status: str  # pass | warn | n/a
    detail: str
    threshold: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    method: str  # estimate | chat_template | plain_text
    label: str  # the axis and table label: says whether the numbers are real tokens or an estimate
    max_tokens: int | None
    template_errors: int = 0  # rows the chat template refused, counted as plain text instead


@dataclass
class ReportData:
    sft: SftPart
    dpo: DpoPart
    tokens: TokenInfo
    sources: list[str] = field(default_factory=list)
    splits: dict[str, str] = field(default_factory=dict)  # declared split -> where its rows came from
    prompts: int = 0  # distinct prompts over SFT rows and DPO pairs
    shared_prompts: int = 0  # user questions (a prompt's user text) in both train and validation
    accounting: dict[str, Any] | None = None  # the manifest's, or lines/rollouts/rejected of rollouts read
    manifest: dict[str, Any] | None = None
    created_at: str = ""
    checks: list[Check] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=thresholds)  # the checks' (a recipe's checks: map)
    samples: list[dict[str, Any]] = field(default_factory=list)  # a few SFT rows as the model sees them
    samples_rendered_with: str = ""
    environments: EnvFigures = field(default_factory=EnvFigures)  # rows and pairs per environment

    @property
    def warnings(self) -> list[str]:
        return [f"{c.title}: {c.detail} (threshold: {c.threshold})" for c in self.checks if c.status == WARN]

    @property
    def task_types(self) -> dict[str, int]:
        """Task-type counts the diversity section judges: SFT rows', else DPO pairs' (when they carry one)."""
        counts = self.sft.task_types if self.sft.rows else self.dpo.task_types
        return dict(counts.most_common())

    @property
    def task_entropy(self) -> float:
        return normalised_entropy(self.task_types)

    @property
    def largest_task(self) -> tuple[str, float] | None:
        counts = self.task_types
        if not counts:
            return None
        name = next(iter(counts))
        return name, share(counts[name], sum(counts.values()))

    def sequence_lengths(self) -> dict[str, dict[str, Any]]:
        """The trainer sequence length for the SFT rows and for the DPO pairs (a pair: its longer side,
        prompt included), with the rows it would cut (see rollforge.report.lengths)."""
        limit = self.tokens.max_tokens
        pairs = np.maximum(np.asarray(self.dpo.chosen_tokens), np.asarray(self.dpo.rejected_tokens))
        found = {"sft": sequence_length(self.sft.tokens, limit), "dpo": sequence_length(pairs, limit)}
        return {kind: entry for kind, entry in found.items() if entry}

    def split_names(self) -> list[str]:
        """Splits in display order: train, validation, the others, then unsplit rows."""
        names = set(self.splits) | set(self.sft.rows_by_split) | set(self.dpo.pairs_by_split)
        order = {"train": 0, "validation": 1, UNSPLIT: 3}
        return sorted(names, key=lambda n: (order.get(n, 2), n))

    def summary(self) -> dict[str, Any]:
        """The JSON form (``rollforge report --json``)."""
        largest = self.largest_task
        return {
            "sources": self.sources,
            "created_at": self.created_at,
            "tokens": {
                "method": self.tokens.method,
                "label": self.tokens.label,
                "max_tokens": self.tokens.max_tokens,
                "template_errors": self.tokens.template_errors,
            },
            "sequence_lengths": self.sequence_lengths(),
            "size": {
                "splits": self.split_names(),
                "sft_rows": {s: self.sft.rows_by_split[s] for s in self.split_names()},
                "dpo_pairs": {s: self.dpo.pairs_by_split[s] for s in self.split_names()},
                "prompts": self.prompts,
                "task_types": len(self.task_types),
                "prompts_in_train_and_validation": self.shared_prompts,
            },
            "accounting": self.accounting,
            "diversity": {
                "task_types": self.task_types,
                "normalised_entropy": self.task_entropy,
                "largest_task_type": largest[0] if largest else None,
                "largest_task_share": largest[1] if largest else None,
            },
            "sft": self.sft.summary(),
            "dpo": self.dpo.summary(),
            "checks": [
                {
                    "name": c.name,
                    "title": c.title,
                    "status": c.status,
                    "detail": c.detail,
                    "threshold": c.threshold,
                }
                for c in self.checks
            ],
            "thresholds": self.thresholds,
            "warnings": self.warnings,
            "environments": self.environments.summary(self.manifest),
        }
