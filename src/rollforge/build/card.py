"""What a release says about itself: a Hugging Face dataset card (README.md) whose YAML header declares the
``sft`` and ``dpo`` configs, and ready-to-run trainer configs pointing at the release's files.

``datasets`` caches a local dataset under its directory's name and a hash of the card's configs and
dataset_info, not of the files: two releases both named ``v1`` with the same configs would share one cache
entry, and loading the second would return the first one's rows. So each config carries the content digest of
its files (as its ``description``, a builder-config field that enters that hash), and ``dataset_info`` the rows
of each split, which ``datasets`` checks against what it reads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from rollforge.build.kto_card import kto_accounting, kto_weights, one_label
from rollforge.build.nemo_rl import nemo_rl_config
from rollforge.export.formats import NEMO_RL, NOTES, SKIPS, TRL, Format
from rollforge.io.atomic import atomic_file
from rollforge.report.lengths import counted_note, describe_length
from rollforge.tools import UNDECLARED, UNDECLARED_WARNING

SPLITS = ("train", "validation")
LEARNING_RATES = {"sft": 2.0e-5, "dpo": 5.0e-7, "kto": 1.0e-6}  # TRL's KTOConfig default for KTO
NEMO_RL_KINDS = ("sft", "dpo")  # NeMo RL has no KTO algorithm
PRIMARY_NAME = TRL.name  # the release's sft/ and dpo/ configs (rollforge.build.release.PRIMARY)


def _write(path: Path, text: str) -> None:
    with atomic_file(path) as fh:
        fh.write(text.encode())


def _files(manifest: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(split, output entry) of a config's data files; an empty split is left out (the json loader cannot
    read an empty file)."""
    outputs = {o["path"]: o for o in manifest["outputs"]}
    found = [(s, outputs.get(f"{kind}/{s}.jsonl")) for s in SPLITS]
    return [(s, o) for s, o in found if o and o["rows"]]


def content_digest(files: list[tuple[str, dict[str, Any]]]) -> str:
    """sha256 over each file's path and sha256 (as manifest.json lists them): the content identity."""
    digest = hashlib.sha256()
    for _, entry in files:
        digest.update(f"{entry['path']} {entry['sha256']}\n".encode())
    return digest.hexdigest()


def card_header(manifest: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, Any]:
    configs, infos = [], []
    for kind in kinds:
        files = _files(manifest, kind)
        if not files:
            continue
        configs.append(
            {
                "config_name": kind,
                "description": f"rollforge {kind} rows, content sha256 {content_digest(files)}",
                "data_files": [{"split": s, "path": o["path"]} for s, o in files],
            }
        )
        splits = [{"name": s, "num_examples": o["rows"]} for s, o in files]
        infos.append({"config_name": kind, "splits": splits})
    return {"configs": configs, "dataset_info": infos, "tags": ["rollforge", "nemo-gym", *kinds]}


def write_card(tmp: Path, final: Path, manifest: dict[str, Any], kinds: tuple[str, ...]) -> None:
    header = card_header(manifest, kinds)
    acc = manifest["accounting"]
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False).rstrip(),
        "---",
        f"# {final.name}: {', '.join(k.upper() for k in kinds)} data from NeMo Gym rollouts",
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
    undeclared = acc["sft"].get("export", {}).get(UNDECLARED)
    if undeclared:
        lines.append(f"| SFT rows calling a tool their rollout does not declare | {undeclared} |")
    if "dpo" in acc:
        dpo = acc["dpo"]
        lines += [
            f"| DPO prompts | {dpo['prompts']} |",
            *(f"| unpaired: {k} | {v} |" for k, v in dpo["unpaired"].items()),
        ]
        lines.append(f"| **DPO pairs** (train / validation) | **{dpo['train']} / {dpo['validation']}** |")
    if "kto" in acc:
        lines += kto_accounting(acc["kto"])
    if undeclared:
        lines += ["", f"**Warning:** {undeclared} {UNDECLARED_WARNING}."]
    lines += export_notes(acc)
    lines += _lengths(manifest.get("sequence_lengths") or {})
    lines += _usage(final.name, kinds)
    _write(tmp / "README.md", "\n".join(lines) + "\n")


def export_notes(acc: dict[str, Any]) -> list[str]:
    """Every format's export notes (what a written row lost or had changed) and skipped rows or pairs
    (what a format could not hold), as the manifest's accounting counts them."""
    found: list[tuple[str, str, str, int]] = []
    per_format: list[tuple[str, str, dict[str, int] | None, dict[str, int] | None]] = [
        (PRIMARY_NAME, "SFT", acc["sft"].get("export"), None)
    ]
    if "dpo" in acc:
        per_format.append((PRIMARY_NAME, "DPO", acc["dpo"].get("export"), acc["dpo"].get("skipped")))
    if "kto" in acc:
        per_format.append((PRIMARY_NAME, "KTO", acc["kto"].get("export"), None))
    for name, entry in (acc.get("formats") or {}).items():
        per_format.append((name, "SFT", entry.get("sft_export"), entry.get("sft_skipped")))
        if entry.get("dpo") is not None:
            per_format.append((name, "DPO", entry.get("dpo_export"), entry.get("dpo_skipped")))
    for name, kind, notes, skipped in per_format:
        found += [
            (name, kind, f"{note}: {NOTES.get(note, note)}", n) for note, n in (notes or {}).items() if n
        ]
        what = "rows" if kind == "SFT" else "pairs"
        found += [
            (name, kind, f"{what} not written, {reason}: {SKIPS.get(reason, reason)}", n)
            for reason, n in (skipped or {}).items()
            if n
        ]
    if not found:
        return ["", "## Export notes", "", "Every format holds every kept row as it is: no export notes."]
    lines = ["", "## Export notes", "", "What a format changed in the rows it wrote, or could not hold.", ""]
    lines += ["| format | data | note | count |", "|---|---|---|---:|"]
    lines += [f"| {name} | {kind} | {text} | {n} |" for name, kind, text, n in found]
    return lines


def _lengths(lengths: dict[str, Any]) -> list[str]:
    """The sequence length each config sets, and what it cuts."""
    found = [(kind, lengths[kind]) for kind in ("sft", "dpo", "kto") if kind in lengths]
    if not found:
        return []
    note = counted_note(lengths["counted"])
    lines = ["", "## Sequence lengths", "", f"What the trainer configs set. {note}", ""]
    for kind, entry in found:
        lines.append(f"- {kind.upper()}: {describe_length(entry, 'pairs' if kind == 'dpo' else 'rows')}")
    return lines


def _usage(name: str, kinds: tuple[str, ...]) -> list[str]:
    kto = [
        f'kto = load_dataset("{name}", "kto")   # prompt, completion, label, tools, prompt_id, rollout_id, reward'
    ]
    return [
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        f'sft = load_dataset("{name}", "sft")   # messages, tools (JSON string), prompt_id, rollout_id, reward, task_type',
        f'dpo = load_dataset("{name}", "dpo")   # prompt, chosen, rejected, tools, chosen_reward, rejected_reward, margin',
        *(kto if "kto" in kinds else []),
        "```",
        "",
        "`sft/`, `dpo/` and `kto/` are in TRL's conversational format (tool-call arguments as objects, reasoning in",
        "`reasoning_content`); other formats sit in folders of their own. No prompt is in both splits.",
        "Each config's description holds the sha256 of its files, so `datasets` caches this release apart",
        "from any other of the same name. Ready-to-run trainer configs are in `trainer-configs/` (see its README).",
    ]


def write_trainer_configs(
    tmp: Path, final: Path, manifest: dict[str, Any], formats: list[Format], kinds: tuple[str, ...]
) -> None:
    out = tmp / "trainer-configs"
    lengths = manifest.get("sequence_lengths") or {}
    counted = lengths.get("counted", "tokens")
    rows_of = {kind: {s: o["rows"] for s, o in _files(manifest, kind)} for kind in kinds}
    # A kind without training rows gets no config: a trainer would fail on its empty (or missing) files.
    missing = {k: f"the train split has no {k.upper()} rows" for k in kinds if not rows_of[k].get("train")}
    if "kto" in kinds and "kto" not in missing and (why := one_label(manifest["accounting"]["kto"])):
        missing["kto"] = why  # KTO learns from both labels
    written = tuple(k for k in kinds if k not in missing)
    nemo_rl = NEMO_RL in formats
    for kind in written:
        rows = rows_of[kind]
        trl = _trl(kind, final, bool(rows.get("validation")), lengths.get(kind), counted)
        if kind == "kto":
            trl = kto_weights(trl, manifest["accounting"]["kto"])
        _write(out / f"trl_{kind}.yaml", trl)
        if nemo_rl and kind in NEMO_RL_KINDS:
            _write(out / f"nemo_rl_{kind}.yaml", nemo_rl_config(kind, final, rows, lengths, counted))
    _write(out / "README.md", _configs_readme(final, written, nemo_rl, missing))


def _trl(kind: str, final: Path, has_validation: bool, length: dict[str, Any] | None, counted: str) -> str:
    version = final.name
    config: dict[str, Any] = {
        "model_name_or_path": "REPLACE-WITH-A-MODEL",
        "dataset_name": str(final),
        "dataset_config": kind,
        "dataset_train_split": "train",
        "dataset_test_split": "validation",
        "output_dir": f"runs/{kind}-{version}",
        "num_train_epochs": 1,
        "learning_rate": LEARNING_RATES[kind],
        # KTO's KL estimate pairs each completion with another prompt's in the same batch: 2 rows at least
        "per_device_train_batch_size": 2 if kind == "kto" else 1,
        "gradient_accumulation_steps": 4 if kind == "kto" else 8,
        "logging_steps": 10,
        "eval_strategy": "steps" if has_validation else "no",
        "eval_steps": 100,
        "save_strategy": "epoch",
        "report_to": "none",
    }
    if length:
        config["max_length"] = length["tokens"]
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
    if length:
        what = "pairs" if kind == "dpo" else "rows"
        cut = {"sft": "a longer row", "dpo": "a longer pair, and drops one whose prompt fills it"}.get(
            kind, "a longer row, and drops one whose prompt fills it"
        )
        head += f"# max_length: {describe_length(length, what)}.\n# {counted_note(counted)} TRL truncates {cut}.\n"
    return head + yaml.safe_dump(config, sort_keys=False)


def _configs_readme(final: Path, kinds: tuple[str, ...], nemo_rl: bool, missing: dict[str, str]) -> str:
    lines = [f"# Trainer configs for {final.name}", ""]
    lines += [f"- no {k.upper()} configs: {why}" for k, why in missing.items()]
    for kind in kinds:
        lines.append(
            f"- `trl_{kind}.yaml`: `trl {kind} --config {final}/trainer-configs/trl_{kind}.yaml "
            "--model_name_or_path YOUR_MODEL`"
        )
        if nemo_rl and kind in NEMO_RL_KINDS:
            lines.append(f"- `nemo_rl_{kind}.yaml`: NeMo RL `examples/run_{kind}.py` (see the file's header)")
    lines += [
        "",
        "Or with rollforge itself: `rollforge train sft --model YOUR_MODEL --data "
        + str(final)
        + " -o runs/sft`",
    ]
    return "\n".join(lines) + "\n"
