"""What a release says about its ``kto`` config: the label counts in its card, and TRL's KTO weights."""

from __future__ import annotations

from typing import Any

import yaml


def one_label(kto: dict[str, Any]) -> str | None:
    """Why the train split cannot make a KTO config (it has one label only), or None."""
    train = kto["labels"].get("train", {})
    missing = [label for label in ("desirable", "undesirable") if not train.get(label)]
    return (
        f"the train split has no {' and no '.join(missing)} rows (KTO learns from both labels)"
        if missing
        else None
    )


def kto_weights(config_text: str, kto: dict[str, Any]) -> str:
    """TRL's KTO config with desirable_weight and undesirable_weight set from the train split's labels."""
    train = kto["labels"]["train"]
    weights = kto["weights"]
    head = (
        f"# desirable_weight / undesirable_weight: the train split has {train['desirable']} desirable and "
        f"{train['undesirable']} undesirable rows;\n# TRL's KTO guidance (the KTO paper's Eq. 8): "
        "desirable_weight * desirable / (undesirable_weight * undesirable) in [1, 4/3].\n"
    )
    extra = {"desirable_weight": weights["desirable"], "undesirable_weight": weights["undesirable"]}
    return head + config_text + yaml.safe_dump(extra, sort_keys=False)


def kto_accounting(kto: dict[str, Any]) -> list[str]:
    """The card's accounting lines of the KTO config."""
    train, validation = kto["labels"].get("train", {}), kto["labels"].get("validation", {})
    lines = [f"| KTO labels | {kto['label_rule']} |"]
    if kto.get("ignored_filters"):
        lines.append(f"| KTO ignores the reward filters | {', '.join(kto['ignored_filters'])} |")
    lines += [f"| KTO filtered: {k} | {v} |" for k, v in kto["filtered"].items()]
    for label in ("desirable", "undesirable"):
        lines.append(
            f"| KTO {label} (label {label == 'desirable'}; train / validation) "
            f"| {train.get(label, 0)} / {validation.get(label, 0)} |"
        )
    lines.append(f"| **KTO rows** (train / validation) | **{kto['train']} / {kto['validation']}** |")
    return lines
