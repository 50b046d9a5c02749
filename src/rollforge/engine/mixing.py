"""Each environment's part of what a run wrote: rows and pairs per environment, the success policy in
force for each, and the mixes (``rollforge.mix``) of the SFT set and of the DPO pairs.

The SFT mix is a filter over the kept rows (``over_mix_share``, ``rollforge.filters``); the DPO mix is
applied here, to the pairs, by the environment of their prompt, with the same weights and seeded keys.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rollforge.engine.index import RowIndex
from rollforge.engine.job import Job
from rollforge.engine.local import Scan
from rollforge.engine.select import DpoSelection, PairRows, reward_ranges
from rollforge.mix import Mixer


def env_rows(index: RowIndex, keep: list[bool] | None = None) -> dict[str, int]:
    """Rows per environment (of those ``keep`` marks, else all)."""
    counts: Counter = Counter(code for row, code in enumerate(index.env) if keep is None or keep[row])
    return {
        index.env_names[code]: n for code, n in sorted(counts.items(), key=lambda kv: index.env_names[kv[0]])
    }


def env_pairs(index: RowIndex, pairs: PairRows) -> dict[str, int]:
    counts = Counter(index.env_names[index.env[chosen]] for chosen, _ in pairs)
    return dict(sorted(counts.items()))


def mix_pairs(selection: DpoSelection, index: RowIndex, job: Job) -> None:
    """Hold each environment of the mix at its share of the pairs (``selection`` is updated: its pairs,
    ``mix`` the plan, and ``unpaired['over_mix_share']``/``['not_in_mix']`` the pairs it let go)."""
    weights = job.filters.policy.weights
    if not weights or not len(selection.pairs):
        return
    pairs = list(selection.pairs)
    envs = [index.env_names[index.env[chosen]] for chosen, _ in pairs]
    keys = [index.key[chosen] for chosen, _ in pairs]
    mixer = Mixer(weights, job.filters.mix_size)
    dropped = set(mixer.drop(envs, keys, [True] * len(pairs)))
    kept = PairRows()
    for n, (chosen, rejected) in enumerate(pairs):
        if n not in dropped:
            kept.add(chosen, rejected)
    selection.pairs, selection.mix = kept, mixer.plan
    if dropped:
        selection.dropped_by_mix = len(dropped)


def margin_accounting(index: RowIndex, job: Job) -> dict[str, Any]:
    """Which margin is in force: absolute (reward units), or range (a fraction of each environment's
    observed reward range, with the margin that makes in each)."""
    pairing = job.pairing
    out: dict[str, Any] = {"scale": pairing.margin_scale, "min_margin": pairing.min_margin}
    if pairing.margin_scale == "range":
        out["per_env"] = {
            index.env_names[code]: round(pairing.min_margin * span, 6) for code, span in reward_ranges(index)
        }
    return out


def environment_accounting(
    scan: Scan, job: Job, keep: list[bool] | None, sft_mix: dict[str, Any], dpo: DpoSelection | None
) -> dict[str, Any]:
    """``environments`` of a run's accounting: per environment its rollouts (every one read, those a first
    look dropped included), SFT rows, pairs and success policy; and each mix's plan (wanted and achieved
    shares, shortfalls)."""
    success, index = job.filters.success, scan.index
    rollouts = dict(sorted(scan.inventory.envs.counts.items()))
    rows = env_rows(index, keep) if keep is not None else {}
    pairs = env_pairs(index, dpo.pairs) if dpo is not None else {}
    out: dict[str, Any] = {
        env: {
            "rollouts": n,
            **({"sft_rows": rows.get(env, 0)} if keep is not None else {}),
            **({"pairs": pairs.get(env, 0)} if dpo is not None else {}),
            "success": success.describe(env),
        }
        for env, n in rollouts.items()
    }
    mixes = {"sft": sft_mix} if sft_mix else {}
    if dpo is not None and dpo.mix:
        mixes["dpo"] = dpo.mix
    return {"environments": out, **({"mix": mixes} if mixes else {})}
