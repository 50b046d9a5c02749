"""KTO rows: TRL's unpaired preference format, one row per rollout, for runs with one rollout per task
(no DPO pair can be made inside a prompt's group, yet every rollout says whether it worked).

``{"prompt": [messages], "completion": [messages], "label": bool, "tools": JSON string, "prompt_id",
"rollout_id", "reward", "task_type", "env"}``: the prompt is what the model was given, the completion what it did
(reasoning, tool calls and tool outputs included, ending on its last turn). TRL's ``KTOTrainer`` renders both
with the chat template (``tools`` included) and puts the loss on the completion only.

A row is rendered where the rollout is read, without its label: the label needs the success definition and
the ``--undesirable-below`` bound, and is decided when the row is written (:class:`Labels`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from rollforge.export.messages import Styling
from rollforge.export.sft import ending_on_the_model, trl_columns

BETWEEN_LABELS = "between_labels"  # passes the filters, not a success, reward not below --undesirable-below


def kto_row(record: dict[str, Any], styling: Styling, notes: Counter) -> dict[str, Any]:
    messages = ending_on_the_model(record, notes)
    split = record["prompt_len"]
    return {
        "prompt": styling.apply(messages[:split]),
        "completion": styling.apply(messages[split:]),
        **trl_columns(record),
    }


@dataclass(frozen=True)
class Labels:
    """Desirable: a success (by the run's success definition). Undesirable: not a success and reward below
    ``undesirable_below`` (None: every rollout that is not a success). Anything else gets no label."""

    undesirable_below: float | None = None

    def __call__(self, success: bool, reward: float) -> bool | None:
        if success:
            return True
        if self.undesirable_below is None or reward < self.undesirable_below:
            return False
        return None

    def describe(self, success: str) -> str:
        bound = f" and reward < {self.undesirable_below:g}" if self.undesirable_below is not None else ""
        return f"desirable: {success}; undesirable: not a success{bound}"


def balanced_weights(desirable: int, undesirable: int) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight) for TRL's KTO guidance: desirable_weight * desirable over
    undesirable_weight * undesirable in [1, 4/3] (the KTO paper's Eq. 8, which KTOTrainer checks). The
    majority label keeps weight 1; the minority's is rounded (to 2 decimals) so the ratio stays in range."""
    if not desirable or not undesirable:
        return 1.0, 1.0
    if desirable <= undesirable:
        return math.ceil(undesirable / desirable * 100) / 100, 1.0
    return 1.0, math.floor(desirable / undesirable * 100) / 100
