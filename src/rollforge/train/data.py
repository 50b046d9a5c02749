"""Find and load the training data: a JSONL file, or a release directory's ``sft/`` or ``dpo/`` split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, load_dataset
from datasets.exceptions import DatasetGenerationError

from rollforge.errors import RollforgeError

# The columns TRL reads for each method. Everything else (prompt_id, reward, ...) is dropped: TRL sniffs columns
# to pick its mode (``input_ids`` means pre-tokenized, ``images`` means vision), so stray ones must not reach it.
REQUIRED_COLUMNS = {"sft": ["messages"], "dpo": ["prompt", "chosen", "rejected"]}
OPTIONAL_COLUMNS = ["tools", "chat_template_kwargs"]


@dataclass
class TrainData:
    train: Dataset
    validation: Dataset | None
    train_file: Path
    validation_file: Path | None


def resolve_files(data: Path, method: str) -> tuple[Path, Path | None]:
    """The train file and the optional validation file that ``--data`` names."""
    if data.is_file():
        return data, None
    if not data.is_dir():
        raise RollforgeError(f"no such data file or release directory: {data}")
    train = data / method / "train.jsonl"
    if not train.is_file():
        raise RollforgeError(
            f"release {data} has no {method}/train.jsonl",
            hint=f"pass a JSONL file of {method.upper()} rows, or a release directory built by 'rollforge build'",
        )
    validation = data / method / "validation.jsonl"
    # A small release can leave the validation split empty; that means "no validation", not an error.
    has_validation = validation.is_file() and validation.stat().st_size > 0
    return train, validation if has_validation else None


def load_split(path: Path, method: str) -> Dataset:
    """Load one JSONL split, keeping only the columns TRL reads.

    ``tools`` stays a JSON string: TRL 1.16 decodes it per row, and Arrow would corrupt heterogeneous tool
    schemas if it were parsed here. datasets >= 5 stores mixed message structures (tool-call arguments with
    different keys) as JSON values instead of None-padding them into one struct.
    """
    if path.stat().st_size == 0:
        raise RollforgeError(f"{path} has no rows to train on")
    try:
        dataset = load_dataset("json", data_files=str(path), split="train")
    except (
        DatasetGenerationError
    ) as exc:  # raised for a line that is not JSON, with the parser's message as cause
        raise RollforgeError(f"cannot read {path} as JSONL", hint=str(exc.__cause__ or exc)) from exc
    missing = [name for name in REQUIRED_COLUMNS[method] if name not in dataset.column_names]
    if missing:
        found = ", ".join(dataset.column_names)
        raise RollforgeError(
            f"{path} is not {method.upper()} data: rows need {', '.join(REQUIRED_COLUMNS[method])} (found: {found})",
            hint=f"pass the {method}/train.jsonl of a rollforge release",
        )
    keep = REQUIRED_COLUMNS[method] + [name for name in OPTIONAL_COLUMNS if name in dataset.column_names]
    return dataset.select_columns(keep)


def load_train_data(data: Path, method: str) -> TrainData:
    train_file, validation_file = resolve_files(data, method)
    validation = load_split(validation_file, method) if validation_file else None
    return TrainData(load_split(train_file, method), validation, train_file, validation_file)
