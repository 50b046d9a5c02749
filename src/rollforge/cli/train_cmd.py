"""`rollforge train sft|dpo`: fine-tune a model on a release with TRL (a shell over rollforge.train)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from rollforge.cli.common import add_command, print_json
from rollforge.errors import missing_extra

DESCRIPTION = """\
Fine-tune a model on a rollforge release (or one JSONL file) with TRL: `sft` runs SFTTrainer with loss on the
assistant's tokens only (reasoning, answers, tool calls; not tool outputs or environment turns), `dpo` runs
DPOTrainer on chosen/rejected pairs.

--data is a JSONL file or a release directory holding sft/train.jsonl (or dpo/train.jsonl) and optionally
validation.jsonl beside it. OUTDIR ends with the model (or LoRA adapter) and tokenizer, training_metrics.json,
loss.png, lineage.json (the release: path, version, manifest sha256; the base model and its own lineage;
trainer, config, metrics) and the last checkpoints (for --resume). --config FILE sets any SFTConfig/DPOConfig field; flags win.
Runs offline: nothing is reported to wandb or the like.
"""

EXAMPLES = """\
  rollforge train sft --model Qwen/Qwen3-0.6B --data releases/v1 -o runs/sft --max-steps 200
  rollforge train sft --model ./base --data sft.jsonl -o runs/lora --lora --lora-rank 32
  rollforge train dpo --model runs/sft --data releases/v1 -o runs/dpo --config dpo.yaml
  rollforge train sft --model ./base --data releases/v1 -o runs/sft --resume --max-steps 400
"""


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub, "train", "fine-tune a model on a release (SFT or DPO, with TRL)", DESCRIPTION, EXAMPLES
    )
    methods = parser.add_subparsers(dest="method", metavar="METHOD", required=True)
    for method, help_text in (("sft", "supervised fine-tuning"), ("dpo", "direct preference optimisation")):
        method_parser = methods.add_parser(
            method,
            help=help_text,
            description=DESCRIPTION,
            epilog="examples:\n" + EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_options(method_parser, method)
        method_parser.set_defaults(func=run)


def _add_options(parser: argparse.ArgumentParser, method: str) -> None:
    parser.add_argument("--model", required=True, help="model directory or Hugging Face id (cached)")
    parser.add_argument("--data", required=True, type=Path, help="release directory or JSONL file")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR", help="output directory")
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help=f"YAML/JSON of {method.upper()}Config fields"
    )
    steps = parser.add_mutually_exclusive_group()
    steps.add_argument("--max-steps", type=int, help="number of optimizer steps")
    steps.add_argument("--epochs", type=float, help="passes over the training data")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--batch-size", type=int, help="per-device train batch size")
    parser.add_argument("--max-length", type=int, help="truncate sequences to this many tokens")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--lora", action="store_true", help="train a LoRA adapter instead of all weights")
    parser.add_argument("--lora-rank", type=int, default=16, help="LoRA rank (default 16)")
    parser.add_argument("--lora-alpha", type=int, default=32, help="LoRA alpha (default 32)")
    parser.add_argument(
        "--lora-targets", nargs="+", metavar="MODULE", help="modules to adapt (default all-linear)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUTDIR")
    parser.add_argument(
        "--chat-template", type=Path, metavar="FILE", help="Jinja chat template to use instead"
    )
    if method == "sft":
        parser.add_argument(
            "--no-assistant-only-loss",
            dest="assistant_only_loss",
            action="store_false",
            default=None,
            help="train on every token, not only the assistant's",
        )
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        from rollforge.train import TrainOptions, train_dpo, train_sft
    except ImportError as exc:
        raise missing_extra(exc.name or "trl", "train") from exc
    options = TrainOptions(
        model=args.model,
        data=args.data,
        output_dir=args.output,
        config_file=args.config,
        max_steps=args.max_steps,
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        lora=args.lora,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha,
        lora_targets=args.lora_targets,
        resume=args.resume,
        chat_template=args.chat_template,
        assistant_only_loss=getattr(args, "assistant_only_loss", None),
    )
    train = train_sft if args.method == "sft" else train_dpo
    # Trainer logs print to stdout; keep stdout for our summary or the --json object.
    with contextlib.redirect_stdout(sys.stderr):
        metrics = train(options)
    if args.json:
        print_json(metrics)
    else:
        print(summary(metrics))
    return 0


def summary(metrics: dict[str, Any]) -> str:
    """A few lines: steps, first and last loss, where things were written."""
    log = metrics["log"]
    lines = [f"trained {metrics['method']} for {metrics['global_step']} steps"]
    if log:
        lines[0] += f": loss {log[0]['loss']:.4f} -> {log[-1]['loss']:.4f}"
    if metrics["eval_loss"] is not None:
        lines[0] += f", eval loss {metrics['eval_loss']:.4f}"
    what = "LoRA adapter" if metrics["adapter"] else "model"
    lines.append(f"{what} + tokenizer: {metrics['output_dir']}")
    lines.append(f"metrics: {metrics['metrics_file']}, loss curve: {metrics['loss_plot']}")
    lines.append(f"lineage (release, base model, config, metrics): {metrics['lineage_file']}")
    return "\n".join(lines)
