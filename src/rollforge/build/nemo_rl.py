"""NeMo RL trainer configs for a release: ``defaults:`` NeMo RL's own base (examples/configs/sft.yaml, dpo.yaml),
with every inherited key that would break a run on this release overridden.

What the bases hold (NVIDIA-NeMo/RL, examples/configs, read at commit 7ea279a) and why each is overridden:
- SFT ``policy.tokenizer.chat_template`` is a SQuAD "Context: / Question: / Answer:" template: it renders an
  assistant tool call as a blank and a tool output as nothing, and shows no tools. ``default`` keeps the
  model's own template (``get_tokenizer`` in nemo_rl/algorithms/utils.py).
- DPO ``policy.tokenizer.name`` is a fixed Llama tokenizer, not ``${policy.model_name}``.
- ``data.train`` / ``data.validation`` name other datasets and ``split: validation``: a local JSONL file has only
  a ``train`` split, so ``load_dataset_from_path`` fails with KeyError 'validation'.
- ``policy.max_total_sequence_length`` is 1024: NeMo RL gives a longer row ``loss_multiplier=0``.
- SFT ``logger.wandb_enabled`` is true, which needs a wandb login.
- A release without validation rows: the validation entry, validation runs and the checkpoint metric go (NeMo
  RL asserts ``val_period <= 0`` without a validation set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rollforge.export.formats import NEMO_RL
from rollforge.report.lengths import counted_note, describe_length

# NeMo RL adds a BOS and an EOS token where the chat template does not (get_formatted_message_log), and its
# SFT processor zeroes the loss of a row whose length equals the limit (``length >= max_seq_length``).
SPECIAL_TOKENS = 3


def nemo_rl_config(kind: str, final: Path, rows: dict[str, int], lengths: dict[str, Any], tokens: str) -> str:
    """The config text for ``kind`` (sft | dpo); ``rows`` per split, ``lengths`` the release's measured
    sequence lengths (rollforge.report.lengths), ``tokens`` how they were counted."""
    length = lengths.get(kind)
    config: dict[str, Any] = {"defaults": f"{kind}.yaml", "policy": _policy(kind, length)}
    config["data"] = _data(kind, final, rows)
    config["checkpointing"] = {"checkpoint_dir": f"results/{kind}-{final.name}"}
    if not rows.get("validation"):
        config[kind] = {"val_period": 0, "val_at_start": False, "val_at_end": False}
        config["checkpointing"]["metric_name"] = None
    if kind == "sft":
        config["logger"] = {"wandb_enabled": False}
    return _header(kind, final, length, tokens) + yaml.safe_dump(config, sort_keys=False, width=1000)


def _policy(kind: str, length: dict[str, Any] | None) -> dict[str, Any]:
    policy: dict[str, Any] = {"model_name": "REPLACE-WITH-A-MODEL"}
    if kind == "sft":
        policy["tokenizer"] = {"name": "${policy.model_name}", "chat_template": "default"}
    else:
        policy["tokenizer"] = {"name": "${policy.model_name}"}
    if length:
        policy["max_total_sequence_length"] = length["tokens"] + SPECIAL_TOKENS
    return policy


def _data(kind: str, final: Path, rows: dict[str, int]) -> dict[str, Any]:
    name = "openai_format" if kind == "sft" else "PreferenceDataset"
    data: dict[str, Any] = {}
    for split in ("train", "validation"):
        entry: dict[str, Any] = {
            "dataset_name": name,
            "data_path": str(final / NEMO_RL.name / f"{kind}_{split}.jsonl"),
            "split": "train",  # a local JSONL file's only split, whichever of ours it holds
        }
        if kind == "sft":
            entry |= {"chat_key": "messages", "tool_key": "tools", "use_preserving_dataset": True}
        data[split] = entry if rows.get(split) else None
    return data


def _header(kind: str, final: Path, length: dict[str, Any] | None, tokens: str) -> str:
    lines = [
        f"NeMo RL {kind.upper()} on this release. Copy this file into a NeMo RL checkout's examples/configs/",
        f"(its `defaults: {kind}.yaml` is NeMo RL's own base config), then:",
        f"  uv run examples/run_{kind}.py --config examples/configs/nemo_rl_{kind}.yaml policy.model_name=YOUR_MODEL",
        "Data paths are absolute: if you move the release, update them. Older NeMo RL releases name the keys",
        "data.train_data_path / data.val_data_path(s) instead of data.train / data.validation.",
        "Keys set here override base values that would break the run on this data (chat template, tokenizer,",
        "splits, sequence length); see rollforge's README, Releases.",
    ]
    if length:
        lines += [
            f"max_total_sequence_length: {describe_length(length, 'rows' if kind == 'sft' else 'pairs')};",
            f"+ {SPECIAL_TOKENS} for the BOS/EOS NeMo RL adds and its limit rule (a cut row trains with zero loss).",
            counted_note(tokens),
        ]
    if kind == "dpo":
        lines += [
            "NeMo RL's preference processor renders context + completion WITHOUT the tools: the tool schemas",
            "are not in the prompt during DPO (tool calls and tool outputs in the messages still are).",
        ]
    return "".join(f"# {line}\n" for line in lines)
