"""Supervised fine-tuning on a rollforge SFT split, with TRL's ``SFTTrainer``."""

from __future__ import annotations

from typing import Any

from trl import SFTConfig, SFTTrainer

from rollforge.train.config import TrainOptions, build_config
from rollforge.train.data import load_train_data
from rollforge.train.runner import check_assistant_masks, find_checkpoint, fit, load_tokenizer, lora_config


def train_sft(options: TrainOptions) -> dict[str, Any]:
    """Train ``options.model`` on SFT conversations; returns the metrics written to ``training_metrics.json``.

    By default only the assistant's tokens (reasoning, answers, tool calls) carry loss; tool outputs and
    environment ``user`` turns are context. That needs ``{% generation %}`` markers in the chat template.
    """
    checkpoint = find_checkpoint(options.output_dir, options.resume)
    # Rollout conversations are rendered whole: the assistant's turns are selected by the mask, not by a split.
    config = build_config(SFTConfig, options, assistant_only_loss=True)
    tokenizer = load_tokenizer(options)
    if config.assistant_only_loss:
        check_assistant_masks(tokenizer, options.model)
    data = load_train_data(options.data, "sft")
    trainer = SFTTrainer(
        model=options.model,
        args=config,
        train_dataset=data.train,
        eval_dataset=data.validation,
        processing_class=tokenizer,
        peft_config=lora_config(options),
    )
    return fit(trainer, "sft", options, data, checkpoint)
