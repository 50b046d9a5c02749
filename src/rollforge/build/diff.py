"""``rollforge diff``: what changed between two releases (counts, reward shift, prompts added and removed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from rollforge.build.manifest import MANIFEST
from rollforge.errors import RollforgeError
from rollforge.io.lines import Chunk, LineReader
from rollforge.io.sources import Source
from rollforge.stats import reward_stats


class _Row(msgspec.Struct):
    prompt_id: str | None = None
    reward: float | None = None
    chosen_reward: float | None = None
    margin: float | None = None


def _manifest(release: Path) -> dict[str, Any]:
    try:
        return msgspec.json.decode((release / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise RollforgeError(f"{release} is not a rollforge release (no {MANIFEST})") from None


def _scan(release: Path, kind: str) -> tuple[set[str], list[float]]:
    """Prompt ids and rewards (SFT reward, DPO margin) of a release's trl files, streamed."""
    prompts: set[str] = set()
    values: list[float] = []
    decoder = msgspec.json.Decoder(_Row)
    for split in ("train", "validation"):
        path = release / kind / f"{split}.jsonl"
        if not path.exists():
            continue
        for _, _, line in LineReader(Chunk(Source(str(path), 0))):
            row = decoder.decode(line)
            if row.prompt_id:
                prompts.add(row.prompt_id)
            value = row.reward if kind == "sft" else row.margin
            if value is not None:
                values.append(value)
    return prompts, values


def _delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    keys = sorted(set(a) | set(b))
    return {
        k: {"before": a.get(k, 0), "after": b.get(k, 0), "change": b.get(k, 0) - a.get(k, 0)} for k in keys
    }


def diff(old: str | Path, new: str | Path) -> dict[str, Any]:
    a, b = Path(old), Path(new)
    ma, mb = _manifest(a), _manifest(b)
    acc_a, acc_b = ma["accounting"], mb["accounting"]
    out: dict[str, Any] = {"old": str(a), "new": str(b)}
    out["counts"] = _delta(
        {"lines": acc_a["lines"], "rollouts": acc_a["rollouts"], **_sizes(acc_a)},
        {"lines": acc_b["lines"], "rollouts": acc_b["rollouts"], **_sizes(acc_b)},
    )
    out["rejected"] = _delta(acc_a["rejected"], acc_b["rejected"])
    out["sft_filtered"] = _delta(acc_a["sft"]["filtered"], acc_b["sft"]["filtered"])
    out["input_reward"] = {
        "before": ma.get("inventory", {}).get("reward"),
        "after": mb.get("inventory", {}).get("reward"),
    }
    for kind in ("sft", "dpo"):
        pa, va = _scan(a, kind)
        pb, vb = _scan(b, kind)
        out[kind] = {
            "prompts_added": len(pb - pa),
            "prompts_removed": len(pa - pb),
            "prompts_kept": len(pa & pb),
            "examples_added": sorted(pb - pa)[:5],
            "examples_removed": sorted(pa - pb)[:5],
            ("reward" if kind == "sft" else "margin"): {
                "before": reward_stats(va),
                "after": reward_stats(vb),
            },
        }
    out["recipe_changes"] = {
        k: {"before": ma["recipe"].get(k), "after": mb["recipe"].get(k)}
        for k in sorted(set(ma["recipe"]) | set(mb["recipe"]))
        if ma["recipe"].get(k) != mb["recipe"].get(k)
    }
    return out


def _sizes(acc: dict[str, Any]) -> dict[str, int]:
    sizes = {"sft_train": acc["sft"]["train"], "sft_validation": acc["sft"]["validation"]}
    if "dpo" in acc:
        sizes |= {"dpo_train": acc["dpo"]["train"], "dpo_validation": acc["dpo"]["validation"]}
    return sizes
