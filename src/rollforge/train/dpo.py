"""Preference optimisation on a rollforge DPO split, with TRL's ``DPOTrainer``."""

from __future__ import annotations

from typing import Any

from trl import DPOConfig, DPOTrainer

from rollforge.train.config import TrainOptions, build_config
from rollforge.train.data import load_train_data
from rollforge.train.runner import find_checkpoint, fit, load_tokenizer, lora_config


def train_dpo(options: TrainOptions) -> dict[str, Any]:
    """Train ``options.model`` on chosen/rejected pairs; returns the metrics written to ``training_metrics.json``.

    Every token of chosen and rejected after the shared prompt is in the loss, tool outputs included (TRL's
    behaviour). With ``--lora`` the reference model is the base with the adapter disabled, so no copy is made.
    """
    checkpoint = find_checkpoint(options.output_dir, options.resume)
    config = build_config(DPOConfig, options)
    tokenizer = load_tokenizer(options)
    data = load_train_data(options.data, "dpo")
    trainer = DPOTrainer(
        model=options.model,
        args=config,
        train_dataset=data.train,
        eval_dataset=data.validation,
        processing_class=tokenizer,
        peft_config=lora_config(options),
    )
    return fit(trainer, "dpo", options, data, checkpoint)
