"""What a release says about itself: a Hugging Face dataset card (README.md) whose YAML header declares the
``sft`` and ``dpo`` configs, and ready-to-run trainer configs pointing at the release's files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rollforge.export.formats import NEMO_RL, Format
from rollforge.io.atomic import atomic_file

SPLITS = ("train", "validation")


def _write(path: Path, text: str) -> None:
    with atomic_file(path) as fh:
        fh.write(text.encode())


def _configs(manifest: dict[str, Any], has_dpo: bool) -> list[dict[str, Any]]:
    """Dataset configs; an empty split is left out (the json loader cannot read an empty file)."""
    rows = {o["path"]: o["rows"] for o in manifest["outputs"]}
    configs = []
    for kind in ("sft", "dpo") if has_dpo else ("sft",):
        files = [{"split": s, "path": f"{kind}/{s}.jsonl"} for s in SPLITS if rows.get(f"{kind}/{s}.jsonl")]
        if files:
            configs.append({"config_name": kind, "data_files": files})
    return configs


def write_card(tmp: Path, final: Path, manifest: dict[str, Any], has_dpo: bool) -> None:
    header = {"configs": _configs(manifest, has_dpo), "tags": ["rollforge", "nemo-gym", "sft", "dpo"]}
    acc = manifest["accounting"]
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False).rstrip(),
        "---",
        f"# {final.name}: SFT and DPO data from NeMo Gym rollouts",
        "",
        f"Built by rollforge {manifest['rollforge_version']} on {manifest['finished_at']} from "
        f"{len(manifest['inputs'])} rollouts file(s), seed {manifest['seed']}. `manifest.json` holds the full "
        "recipe, input and output hashes and the accounting; `report.html` is the validation report.",
        "",
        "## Accounting",
        "",
        "| | count |",
        "|---|---:|",
        f"| input lines | {acc['lines']} |",
        f"| rollouts | {acc['rollouts']} |",
        *(f"| rejected: {k} | {v} |" for k, v in acc["rejected"].items()),
        *(f"| SFT filtered: {k} | {v} |" for k, v in acc["sft"]["filtered"].items()),
        f"| **SFT rows** (train / validation) | **{acc['sft']['train']} / {acc['sft']['validation']}** |",
    ]
    if "dpo" in acc:
        dpo = acc["dpo"]
        lines += [
            f"| DPO prompts | {dpo['prompts']} |",
            *(f"| unpaired: {k} | {v} |" for k, v in dpo["unpaired"].items()),
        ]
        lines.append(f"| **DPO pairs** (train / validation) | **{dpo['train']} / {dpo['validation']}** |")
    lines += _usage(final.name)
    _write(tmp / "README.md", "\n".join(lines) + "\n")


def _usage(name: str) -> list[str]:
    return [
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        f'sft = load_dataset("{name}", "sft")   # messages, tools (JSON string), prompt_id, rollout_id, reward, task_type',
        f'dpo = load_dataset("{name}", "dpo")   # prompt, chosen, rejected, tools, chosen_reward, rejected_reward, margin',
        "```",
        "",
        "`sft/` and `dpo/` are in TRL's conversational format (tool-call arguments as objects, reasoning in",
        "`reasoning_content`); other formats sit in folders of their own. No prompt is in both splits.",
        "Ready-to-run trainer configs are in `trainer-configs/` (see its README).",
    ]


def write_trainer_configs(
    tmp: Path, final: Path, manifest: dict[str, Any], formats: list[Format], has_dpo: bool
) -> None:
    out = tmp / "trainer-configs"
    rows = {o["path"]: o["rows"] for o in manifest["outputs"]}
    kinds = ("sft", "dpo") if has_dpo else ("sft",)
    nemo_rl = NEMO_RL in formats
    for kind in kinds:
        _write(out / f"trl_{kind}.yaml", _trl(kind, final, bool(rows.get(f"{kind}/validation.jsonl"))))
        if nemo_rl:
            _write(out / f"nemo_rl_{kind}.yaml", _nemo_rl(kind, final))
    _write(out / "README.md", _configs_readme(final, kinds, nemo_rl))


def _trl(kind: str, final: Path, has_validation: bool) -> str:
    version = final.name
    config: dict[str, Any] = {
        "model_name_or_path": "REPLACE-WITH-A-MODEL",
        "dataset_name": str(final),
        "dataset_config": kind,
        "dataset_train_split": "train",
        "dataset_test_split": "validation",
        "output_dir": f"runs/{kind}-{version}",
        "num_train_epochs": 1,
        "learning_rate": 2.0e-5 if kind == "sft" else 5.0e-7,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 8,
        "logging_steps": 10,
        "eval_strategy": "steps" if has_validation else "no",
        "eval_steps": 100,
        "save_strategy": "epoch",
        "report_to": "none",
    }
    if kind == "sft":
        config["assistant_only_loss"] = True  # tool outputs and user turns carry no loss
    else:
        config["beta"] = 0.1
    head = (
        f"# TRL {kind.upper()} on this release (dataset_name is the release; its README declares the configs):\n"
        f"#   trl {kind} --config {final}/trainer-configs/trl_{kind}.yaml --model_name_or_path YOUR_MODEL\n"
        "# Any TRL config field can be set here or overridden on the command line. If you move the release,\n"
        "# update dataset_name.\n"
    )
    return head + yaml.safe_dump(config, sort_keys=False)


def _nemo_rl(kind: str, final: Path) -> str:
    name = "openai_format" if kind == "sft" else "PreferenceDataset"
    data: dict[str, Any] = {}
    for split, key in (("train", "train"), ("validation", "validation")):
        entry: dict[str, Any] = {
            "dataset_name": name,
            "data_path": str(final / NEMO_RL.name / f"{kind}_{split}.jsonl"),
        }
        if kind == "sft":
            entry |= {"chat_key": "messages", "tool_key": "tools", "use_preserving_dataset": True}
        data[key] = entry
    config = {
        "defaults": f"{kind}.yaml",
        "policy": {"model_name": "REPLACE-WITH-A-MODEL"},
        "data": data,
        "checkpointing": {"checkpoint_dir": f"results/{kind}-{final.name}"},
    }
    head = (
        f"# NeMo RL {kind.upper()} on this release. Copy this file into a NeMo RL checkout's examples/configs/\n"
        f"# (its `defaults: {kind}.yaml` is NeMo RL's own base config), then:\n"
        f"#   uv run examples/run_{kind}.py --config examples/configs/nemo_rl_{kind}.yaml policy.model_name=YOUR_MODEL\n"
        "# Data paths are absolute: if you move the release, update them. Older NeMo RL releases name the keys\n"
        "# data.train_data_path / data.val_data_path(s) instead of data.train / data.validation.\n"
    )
    return head + yaml.safe_dump(config, sort_keys=False)


def _configs_readme(final: Path, kinds: tuple[str, ...], nemo_rl: bool) -> str:
    lines = [f"# Trainer configs for {final.name}", ""]
    for kind in kinds:
        lines.append(
            f"- `trl_{kind}.yaml`: `trl {kind} --config {final}/trainer-configs/trl_{kind}.yaml "
            "--model_name_or_path YOUR_MODEL`"
        )
        if nemo_rl:
            lines.append(f"- `nemo_rl_{kind}.yaml`: NeMo RL `examples/run_{kind}.py` (see the file's header)")
    lines += [
        "",
        "Or with rollforge itself: `rollforge train sft --model YOUR_MODEL --data "
        + str(final)
        + " -o runs/sft`",
    ]
    return "\n".join(lines) + "\n"
