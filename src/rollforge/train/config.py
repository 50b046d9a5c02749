"""What a training run is asked to do, and how that becomes one TRL config.

Precedence, lowest first: rollforge's defaults, the ``--config`` file (any ``SFTConfig``/``DPOConfig`` field),
then the command-line flags that were actually given.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rollforge.errors import RollforgeError

ConfigT = TypeVar("ConfigT")

# TrainOptions attribute -> TRL config field, for the flags that map one-to-one.
FLAG_FIELDS = {
    "max_steps": "max_steps",
    "epochs": "num_train_epochs",
    "learning_rate": "learning_rate",
    "batch_size": "per_device_train_batch_size",
    "max_length": "max_length",
    "seed": "seed",
    "assistant_only_loss": "assistant_only_loss",
}


@dataclass
class TrainOptions:
    """One training run. ``None`` means "not given": the config file or TRL's default decides."""

    model: str
    data: Path
    output_dir: Path
    config_file: Path | None = None
    max_steps: int | None = None
    epochs: float | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    max_length: int | None = None
    seed: int | None = None
    lora: bool = False
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_targets: list[str] | None = None
    resume: bool = False
    chat_template: Path | None = None
    assistant_only_loss: bool | None = None  # SFT only


# A model this small trains in seconds: TRL's large-model defaults only slow it down.
SMALL_MODEL_HIDDEN = 512


def small_model(model: str) -> bool:
    """A local model directory whose config says it is tiny (hidden size at most ``SMALL_MODEL_HIDDEN``)."""
    config = Path(model) / "config.json"
    try:
        hidden = yaml.safe_load(config.read_text(encoding="utf-8")).get("hidden_size")
    except (OSError, yaml.YAMLError, AttributeError):
        return False
    return isinstance(hidden, int) and hidden <= SMALL_MODEL_HIDDEN


def _checkpointing_field() -> str:
    """transformers 5 renamed ``gradient_checkpointing`` (a deprecated alias that warns when set)."""
    from transformers import TrainingArguments

    names = {field.name for field in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def default_values(model: str | None = None) -> dict[str, Any]:
    """rollforge's defaults, each overriding a TRL default that does not suit an offline, any-hardware run."""
    import torch

    values: dict[str, Any] = {
        # TRL defaults to bf16, which TrainingArguments rejects on a CPU or a pre-Ampere GPU.
        "bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        "report_to": "none",  # no wandb/trackio: training must work offline
        # A ratio of the total steps: about 100 points on the loss curve whatever the run length.
        "logging_steps": 0.01,
        "save_total_limit": 2,  # --resume needs only the last checkpoint; full checkpoints are large
    }
    if model is not None and small_model(model):
        # Gradient checkpointing (TRL's default) trades compute for memory a tiny model does not need. Checkpoints
        # stay on, so --resume works; `rollforge iterate` turns them off (retraining takes seconds).
        values[_checkpointing_field()] = False
    return values


def read_config_file(path: Path, config_cls: type) -> dict[str, Any]:
    """Read a YAML or JSON mapping whose keys must all be fields of ``config_cls``."""
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RollforgeError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RollforgeError(
            f"config file {path} is not valid YAML or JSON", hint=str(exc).splitlines()[0]
        ) from exc
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise RollforgeError(f"config file {path} must hold a mapping of {config_cls.__name__} fields")
    known = {field.name for field in dataclasses.fields(config_cls) if field.init}
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = (
                f"did you mean '{close[0]}'?" if close else f"see the {config_cls.__name__} reference in TRL"
            )
            raise RollforgeError(
                f"unknown key '{key}' in {path}: not one of the {config_cls.__name__} fields", hint=hint
            )
    return values


def build_config(config_cls: type[ConfigT], options: TrainOptions, **method_defaults: Any) -> ConfigT:
    """The TRL config for ``options``: defaults (ours, then ``method_defaults``) < config file < given flags."""
    values = default_values(options.model) | method_defaults
    if options.config_file is not None:
        values.update(read_config_file(options.config_file, config_cls))
    for attr, field_name in FLAG_FIELDS.items():
        value = getattr(options, attr)
        if value is not None:
            values[field_name] = value
    values["output_dir"] = str(options.output_dir)
    try:
        return config_cls(**values)
    except (ValueError, TypeError) as exc:  # TRL's and transformers' own checks of the values
        raise RollforgeError(f"invalid training configuration: {exc}") from exc
