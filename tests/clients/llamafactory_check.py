"""Run inside LLaMA-Factory's own venv (make test-clients): load a release's folder with LLaMA-Factory's data
pipeline (``get_dataset`` with the ``qwen`` template) and write, for every row it kept, the decoded text of each
tokenized sequence and of its trained tokens (labels other than -100), as JSON.

    python llamafactory_check.py MODEL DATASET_DIR DATASET STAGE OUTPUT_DIR RESULT_JSON

STAGE is LLaMA-Factory's data stage: ``sft`` for SFT rows, ``rm`` for pairwise rows (what its DPO reads). The
sequences are ``input_ids`` (sft) or ``chosen_input_ids`` / ``rejected_input_ids`` (pairwise).
"""

from __future__ import annotations

import json
import sys

from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
from llamafactory.hparams import get_train_args
from llamafactory.model import load_tokenizer

PREFIXES = ("", "chosen_", "rejected_")


def main(model: str, dataset_dir: str, dataset: str, stage: str, output_dir: str, result: str) -> None:
    args = {
        "stage": "sft" if stage == "sft" else "dpo",
        "do_train": True,
        "model_name_or_path": model,
        "dataset_dir": dataset_dir,
        "dataset": dataset,
        "template": "qwen",
        "cutoff_len": 1_000_000,  # nothing truncated: every token is checked
        "finetuning_type": "lora",
        "output_dir": output_dir,
        "overwrite_cache": True,
        "preprocessing_num_workers": 1,
        "report_to": "none",
    }
    model_args, data_args, training_args, _, _ = get_train_args(args)
    tokenizer_module = load_tokenizer(model_args)
    tokenizer = tokenizer_module["tokenizer"]
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    module = get_dataset(template, model_args, data_args, training_args, stage=stage, **tokenizer_module)
    rows = []
    for row in module["train_dataset"]:
        out = {}
        for prefix in PREFIXES:
            if f"{prefix}input_ids" in row:
                out[f"{prefix}input"] = tokenizer.decode(row[f"{prefix}input_ids"])
                trained = [t for t in row[f"{prefix}labels"] if t != -100]
                out[f"{prefix}trained"] = tokenizer.decode(trained)
        rows.append(out)
    with open(result, "w", encoding="utf-8") as fh:
        json.dump(rows, fh)


if __name__ == "__main__":
    main(*sys.argv[1:])
