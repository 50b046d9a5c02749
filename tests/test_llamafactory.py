"""A release's LLaMA-Factory folder goes through LLaMA-Factory itself, installed in a venv of its own by
``make test-clients`` (it pins transformers, TRL and datasets older than rollforge's train extra): its data
pipeline (``get_dataset``, ``qwen`` template) keeps every row and trains on the assistant's turns only, and
``llamafactory-cli train`` runs 2 LoRA steps on the tiny model. Skipped when that venv is absent.

Each case is one dataset of the release's sharegpt/ folder: the SFT rows (data stage ``sft``) and the DPO pairs
(pairwise rows, ``ranking: true``: data stage ``rm``, which LLaMA-Factory's DPO reads, and ``llamafactory-cli
train`` with stage ``dpo``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from gym_rollouts import read_jsonl

from rollforge.build.recipe import make_recipe
from rollforge.build.release import Release, build
from rollforge.tiny import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
VENV = (ROOT / os.environ.get("ROLLFORGE_LLAMAFACTORY_VENV", ".venv-clients/llamafactory")).resolve()
CHECK = Path(__file__).parent / "clients" / "llamafactory_check.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (VENV / "bin" / "llamafactory-cli").exists(),
        reason=f"LLaMA-Factory is not installed in {VENV}: run `make test-clients`",
    ),
]


@dataclass(frozen=True)
class Case:
    dataset: str  # the dataset_info.json entry (and file stem) in the release's sharegpt/ folder
    data_stage: str  # LLaMA-Factory's data stage: sft, or rm for pairwise rows
    train_stage: str  # the stage of `llamafactory-cli train`
    min_rows: int  # the example corpus gives at least this many


CASES = [Case("sft_train", "sft", "sft", 100), Case("dpo_train", "rm", "dpo", 20)]


@pytest.fixture(scope="module")
def release(examples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Release:
    recipe = {"inputs": [str(examples_dir)], "output": str(tmp_path_factory.mktemp("rel")),
              "extra_formats": ["sharegpt"], "workers": 1}  # fmt: skip
    return build(make_recipe(recipe))


@pytest.fixture(scope="module")
def tiny(examples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    sample = (examples_dir / "tool_calling.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), vocab_corpus=sample)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"HF_HUB_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1", "WANDB_DISABLED": "true"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.dataset)
def test_llamafactory_loads_every_row_and_trains_the_assistant(
    release: Release, tiny: Path, tmp_path: Path, case: Case
) -> None:
    folder = release.path / "sharegpt"
    result = tmp_path / "rows.json"
    run([str(VENV / "bin" / "python"), str(CHECK), str(tiny), str(folder), case.dataset, case.data_stage,
         str(tmp_path / "out"), str(result)], tmp_path)  # fmt: skip
    loaded = json.loads(result.read_text())
    rows = read_jsonl(folder / f"{case.dataset}.jsonl")
    # LLaMA-Factory dropped none (it drops rows whose turns do not alternate)
    assert len(loaded) == len(rows) >= case.min_rows
    if case.data_stage == "sft":
        check_sft(rows, loaded)
    else:
        check_pairs(rows, loaded)


def check_sft(rows: list[dict[str, Any]], loaded: list[dict[str, Any]]) -> None:
    shapes = {"function_call": 0, "observation": 0, "tools": 0}
    for row, seen in zip(rows, loaded, strict=True):
        if json.loads(row["tools"]):
            assert "<tools>" in seen["input"]  # the qwen template shows the declared tools
            shapes["tools"] += 1
        for turn in row["conversations"]:
            kind, value = turn["from"], turn["value"]
            if kind == "gpt":
                assert value in seen["trained"]
            elif kind == "function_call":
                calls = json.loads(value)
                for call in calls if isinstance(calls, list) else [calls]:
                    assert f'<tool_call>\n{{"name": "{call["name"]}"' in seen["trained"]
            else:  # human and observation turns are context, never trained
                assert value in seen["input"] and value not in seen["trained"]
            shapes[kind] = shapes.get(kind, 0) + 1
    assert all(n > 10 for n in shapes.values()), shapes  # the example corpus has every shape


def check_pairs(rows: list[dict[str, Any]], loaded: list[dict[str, Any]]) -> None:
    """The prompt's turns are context on both sides; each side's one turn is what is trained."""
    sides = {"gpt": 0, "think": 0}
    for row, seen in zip(rows, loaded, strict=True):
        for side in ("chosen", "rejected"):
            for turn in row["conversations"]:
                assert turn["value"] in seen[f"{side}_input"] and turn["value"] not in seen[f"{side}_trained"]
            value = row[side]["value"]
            assert row[side]["from"] == "gpt" and value in seen[f"{side}_trained"]
            sides["gpt"] += 1
            sides["think"] += value.startswith("<think>")  # reasoning inline, trained with the answer
        if json.loads(row["tools"]):
            assert "<tools>" in seen["chosen_input"] and "<tools>" in seen["rejected_input"]
        assert seen["chosen_trained"] != seen["rejected_trained"]
    assert all(n > 5 for n in sides.values()), sides


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.dataset)
def test_llamafactory_cli_trains_two_lora_steps(
    release: Release, tiny: Path, tmp_path: Path, case: Case
) -> None:
    out = tmp_path / "out"
    config = {
        "model_name_or_path": str(tiny),
        "stage": case.train_stage,
        "do_train": True,
        "finetuning_type": "lora",
        "lora_target": "all",
        "dataset_dir": str(release.path / "sharegpt"),
        "dataset": case.dataset,
        "template": "qwen",
        "cutoff_len": 1024,
        "max_steps": 2,
        "per_device_train_batch_size": 1,
        "learning_rate": 1.0e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "output_dir": str(out),
        "report_to": "none",
        "preprocessing_num_workers": 1,
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    run([str(VENV / "bin" / "llamafactory-cli"), "train", str(tmp_path / "train.yaml")], tmp_path)
    assert (out / "adapter_model.safetensors").exists()
    log = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
