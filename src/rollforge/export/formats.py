"""The trainer formats, one declaration each: everything rollforge knows about a format is here.

A :class:`Format` names the rows it can write (an SFT row per rollout, a DPO row per pair; a format
without a kind of row leaves it None), where reasoning goes unless ``--reasoning`` says otherwise, how it
types tool-call arguments, the files a trainer needs beside the rows, and what it cannot hold (a row it
refuses is counted under that reason, never written half right). Commands, the engine and releases work
from these declarations and never compare format names. Adding a format is one declaration here, its row
renderers, and a line in :data:`FORMATS`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rollforge.errors import RollforgeError
from rollforge.export.dpo import PairInfo, Pieces, nemo_rl_pair, openai_pair, sharegpt_pair, trl_pair
from rollforge.export.kto import kto_row
from rollforge.export.messages import Styling
from rollforge.export.sft import nemo_rl_row, openai_row, sharegpt_sft_row, trl_row
from rollforge.export.sharegpt import dataset_info_files
from rollforge.tools import UNDECLARED

SftRenderer = Callable[[dict[str, Any], Styling, Counter], dict[str, Any]]  # (record, styling, notes) -> row
PairRenderer = Callable[
    [Pieces, Pieces, PairInfo, Counter], dict[str, Any]
]  # (chosen, rejected, pair, notes)
R = TypeVar("R")


@dataclass(frozen=True)
class Rows(Generic[R]):
    """One kind of row a format writes: its renderer (raising ``Skip(reason)`` for a row it cannot hold)
    and those reasons, each with what it means."""

    render: R
    cannot_hold: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Format:
    name: str  # the --format value
    reasoning: str  # where reasoning goes by default: field | think | drop (rollforge.export.messages)
    arguments: str  # tool-call arguments: "object" (parsed) or "string" (the JSON text)
    sft: Rows[SftRenderer] | None = None
    dpo: Rows[PairRenderer] | None = None
    # Files a trainer reads beside the rows: given {dataset name: file name} of the SFT and of the DPO files
    # written (in one folder), {file name: bytes} to write into that folder.
    side_files: Callable[[dict[str, str], dict[str, str]], dict[str, bytes]] | None = None
    tool_names: bool = True  # a tool message keeps its function's ``name``

    def styling(self, reasoning: str | None = None) -> Styling:
        """How this format renders messages, with ``reasoning`` placed as asked (default: the format's)."""
        return Styling(reasoning or self.reasoning, self.arguments, self.tool_names)

    def sft_row(self, record: dict[str, Any], styling: Styling, notes: Counter) -> dict[str, Any]:
        assert self.sft is not None, f"{self.name} has no SFT rows"
        return self.sft.render(record, styling, notes)

    def pair_row(
        self, chosen: Pieces, rejected: Pieces, info: PairInfo, notes: Counter | None = None
    ) -> dict[str, Any]:
        assert self.dpo is not None, f"{self.name} has no DPO rows"
        return self.dpo.render(chosen, rejected, info, Counter() if notes is None else notes)


TRL = Format("trl", reasoning="field", arguments="object", sft=Rows(trl_row), dpo=Rows(trl_pair))
OPENAI = Format(
    "openai",
    reasoning="think",  # no reasoning field in OpenAI's chat format: inline <think> tags
    arguments="string",  # OpenAI's format keeps arguments as JSON strings, so any arguments text fits
    tool_names=False,  # its fine-tuning schema has no name on a tool message (tool_call_id names the call)
    sft=Rows(openai_row),
    dpo=Rows(openai_pair, {"not_single_assistant_message": "a side is not exactly one assistant message (the "
                           "OpenAI preference format's only shape)"}),
)  # fmt: skip
NEMO_RL = Format(
    "nemo-rl", reasoning="field", arguments="object", sft=Rows(nemo_rl_row), dpo=Rows(nemo_rl_pair)
)
SHAREGPT = Format(
    "sharegpt",
    reasoning="think",
    arguments="object",
    sft=Rows(sharegpt_sft_row, {"not_representable_in_sharegpt": "--format sharegpt and the conversation has no "
             "sharegpt form (an image, a system message mid-conversation, turns that cannot alternate)"}),
    dpo=Rows(sharegpt_pair, {"not_single_sharegpt_turn": "a side is not exactly one assistant message (a "
             "LLaMA-Factory pairwise row's chosen and rejected are one turn each)",
             "prompt_not_representable_in_sharegpt": "the prompt has no sharegpt form (an image, a system message "
             "mid-conversation, turns that cannot alternate)"}),
    side_files=dataset_info_files,  # LLaMA-Factory's dataset_info.json
)  # fmt: skip

# KTO's unpaired rows are one per rollout, rendered as SFT rows are (and labelled when written): not a
# --format of sft or dpo, so it is not in FORMATS.
KTO = Format("trl-kto", reasoning="field", arguments="object", sft=Rows(kto_row))

FORMATS = (TRL, OPENAI, NEMO_RL, SHAREGPT)
DEFAULT_FORMATS = (TRL, NEMO_RL)  # what every release holds; its extra_formats add to them
SFT_FORMATS = tuple(f.name for f in FORMATS if f.sft)
DPO_FORMATS = tuple(f.name for f in FORMATS if f.dpo)


# What each export note counts (rows are written, with this change): in the JSON accounting and the cards.
NOTES = {
    "trimmed_trailing_messages": "messages after the model's last turn (tool outputs, user turns) trimmed: "
    "every row ends on the assistant",
    UNDECLARED: "rows calling a tool their rollout does not declare",
    "sharegpt_text_beside_calls": "assistant text or reasoning beside tool calls dropped (a sharegpt "
    "function_call turn holds the calls only)",
    "sharegpt_merged_turns": "consecutive user turns merged into one human turn (sharegpt turns alternate)",
    "split_at_divergence": "pairs whose shared start moved into the prompt (--split-at-divergence)",
}
# Why a row or pair was not written in one format (the first SFT format's refusals are filter reasons).
SKIPS = {
    "prompt_mismatch": "the two rollouts share a prompt_id but not their prompt messages",
    **{
        reason: what
        for f in FORMATS
        for rows in (f.sft, f.dpo)
        if rows
        for reason, what in rows.cannot_hold.items()
    },
}


def format_named(name: str) -> Format:
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise RollforgeError(
        f"unknown format {name!r}", hint=f"choose one of {', '.join(f.name for f in FORMATS)}"
    )
