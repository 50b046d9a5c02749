"""The parts of a run that SFT and DPO share: tokenizer and chat template, output directory, fit, write-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peft import LoraConfig
from transformers import AutoTokenizer, PreTrainedTokenizerBase, Trainer
from transformers.trainer_utils import get_last_checkpoint
from trl.chat_template_utils import get_training_chat_template, has_generation_markers

from rollforge.errors import RollforgeError
from rollforge.lineage import LINEAGE, training_lineage, write_lineage
from rollforge.train.config import TrainOptions
from rollforge.train.data import TrainData
from rollforge.train.metrics import METRICS_FILE, PLOT_FILE, plot_loss, split_log_history, write_metrics


def load_tokenizer(options: TrainOptions) -> PreTrainedTokenizerBase:
    """The model's tokenizer, with the chat template from ``--chat-template`` if one was given."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(options.model)
    except OSError as exc:
        raise RollforgeError(
            f"cannot load the tokenizer of '{options.model}'",
            hint="pass a local model directory, or a model id already in the Hugging Face cache",
        ) from exc
    if options.chat_template is not None:
        try:
            tokenizer.chat_template = options.chat_template.read_text(encoding="utf-8")
        except OSError as exc:
            raise RollforgeError(
                f"cannot read chat template {options.chat_template}: {exc.strerror}"
            ) from exc
    if not tokenizer.chat_template:
        raise RollforgeError(
            f"'{options.model}' has no chat template, so conversations cannot be rendered",
            hint="pass one with --chat-template FILE",
        )
    return tokenizer


def check_assistant_masks(tokenizer: PreTrainedTokenizerBase, model: str) -> None:
    """Fail early unless TRL can find the assistant's tokens for ``assistant_only_loss``.

    TRL needs ``{% generation %}`` markers; when the template lacks them it swaps in a bundled training template
    for the model families it knows, and raises deep inside the trainer for the others.
    """
    template = tokenizer.chat_template
    if has_generation_markers(template):
        return
    try:
        get_training_chat_template(tokenizer)
        return  # a known family: TRL uses its training template (the saved tokenizer keeps the original one)
    except ValueError:
        pass
    raise RollforgeError(
        f"the chat template of '{model}' has no {{% generation %}} markers, so assistant-only loss cannot find "
        "the assistant's tokens",
        hint="pass a template with generation markers via --chat-template FILE, use a model family TRL ships a "
        "training template for (Qwen, Llama 3, Gemma, Phi, ...), or train on every token with "
        "--no-assistant-only-loss",
    )


def find_checkpoint(output_dir: Path, resume: bool) -> str | None:
    """The checkpoint to resume from; refuses to mix a new run into the directory of an earlier one."""
    last = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if resume and last is None:
        raise RollforgeError(f"nothing to resume: {output_dir} has no checkpoint-* directory")
    if not resume and (last is not None or (output_dir / METRICS_FILE).exists()):
        raise RollforgeError(
            f"{output_dir} already holds a training run",
            hint="pass --resume to continue it, or choose a new -o",
        )
    return last


def lora_summary(options: TrainOptions) -> dict[str, Any] | None:
    """The LoRA settings of the run (``all-linear``: PEFT adapts every linear layer but the output head)."""
    if not options.lora:
        return None
    return {
        "rank": options.lora_rank,
        "alpha": options.lora_alpha,
        "targets": options.lora_targets or "all-linear",
    }


def lora_config(options: TrainOptions) -> LoraConfig | None:
    lora = lora_summary(options)
    if lora is None:
        return None
    return LoraConfig(
        r=lora["rank"], lora_alpha=lora["alpha"], target_modules=lora["targets"], task_type="CAUSAL_LM"
    )


def final_eval_loss(trainer: Trainer) -> float | None:
    """The eval loss of the final weights, reusing the evaluation an ``eval_strategy`` already ran at the end."""
    if trainer.eval_dataset is None:
        return None
    for entry in reversed(trainer.state.log_history):
        if "eval_loss" in entry and entry["step"] == trainer.state.global_step:
            return entry["eval_loss"]
    return trainer.evaluate()["eval_loss"]


def fit(
    trainer: Trainer, method: str, options: TrainOptions, data: TrainData, checkpoint: str | None
) -> dict[str, Any]:
    """Train (resuming from ``checkpoint``), evaluate, save model and tokenizer, write metrics and loss plot."""
    output = trainer.train(resume_from_checkpoint=checkpoint)
    eval_loss = final_eval_loss(trainer)
    trainer.save_model(str(options.output_dir))  # the LoRA adapter only, for a PEFT model
    train_log, eval_log = split_log_history(trainer.state.log_history)
    metrics = {
        "method": method,
        "model": options.model,
        "output_dir": str(options.output_dir),
        "adapter": options.lora,
        "lora": lora_summary(options),
        "train_file": str(data.train_file),
        "validation_file": str(data.validation_file) if data.validation_file else None,
        "train_rows": len(data.train),
        "validation_rows": len(data.validation) if data.validation is not None else 0,
        "metrics_file": str(options.output_dir / METRICS_FILE),
        "loss_plot": str(options.output_dir / PLOT_FILE),
        "resumed_from": checkpoint,
        "global_step": trainer.state.global_step,
        "train_loss": output.training_loss,
        "eval_loss": eval_loss,
        "train_runtime": output.metrics["train_runtime"],
        "log": train_log,
        "eval_log": eval_log,
        "config": json.loads(trainer.args.to_json_string()),
    }
    metrics["lineage_file"] = str(options.output_dir / LINEAGE)
    write_metrics(options.output_dir / METRICS_FILE, metrics)
    plot_loss(options.output_dir / PLOT_FILE, metrics)
    write_lineage(options.output_dir, lineage(options, data, metrics))
    return metrics


def lineage(options: TrainOptions, data: TrainData, metrics: dict[str, Any]) -> dict[str, Any]:
    """``lineage.json``: what this model was trained on and from (rollforge.lineage), with its metrics."""
    import peft
    import torch
    import transformers
    import trl

    log = metrics["log"]
    return training_lineage(
        method=metrics["method"],
        model=options.model,
        output_dir=options.output_dir,
        data=options.data,
        train_file=data.train_file,
        validation_file=data.validation_file,
        config=metrics["config"],
        config_file=options.config_file,
        lora=metrics["lora"],
        trainer={
            "library": "trl",
            "trl": trl.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "torch": torch.__version__,
        },
        metrics={
            "train_loss": metrics["train_loss"],  # the mean over the run (TRL's training_loss)
            "final_logged_loss": log[-1]["loss"] if log else None,
            "eval_loss": metrics["eval_loss"],
            "global_step": metrics["global_step"],
            "train_rows": metrics["train_rows"],
            "validation_rows": metrics["validation_rows"],
            "train_runtime": metrics["train_runtime"],
            "resumed_from": metrics["resumed_from"],
        },
    )
