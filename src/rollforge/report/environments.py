"""The report's per-environment section: each environment's rows and pairs, its rewards on its own scale,
its success rate, its lengths and its share of the release (a corpus mixes environments whose rewards
share no scale: one distribution over all of them hides what each holds).

Rows name their environment in ``env`` (TRL rows written by rollforge; rollouts read directly get it from
``rollforge.environments``). A release's manifest adds each environment's success rate over the corpus,
the success policy in force, and the mix plan (wanted and achieved shares, shortfalls).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollforge.stats import reward_stats


def _env(row: Mapping[str, Any]) -> str | None:
    env = row.get("env")
    return env if isinstance(env, str) and env else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _brief(values: array) -> dict[str, Any] | None:
    """min / median / max / mean of some values (None when there are none)."""
    if not values:
        return None
    stats = reward_stats(values)
    return {k: stats[k] for k in ("min", "max", "mean")} | {"median": stats["quantiles"]["p50"]}


@dataclass
class EnvFigures:
    """Fed row by row beside the SFT and DPO parts; twins read in other processes merge."""

    sft_rows: Counter = field(default_factory=Counter)
    rewards: dict[str, array] = field(default_factory=dict)
    tokens: dict[str, array] = field(default_factory=dict)
    pairs: Counter = field(default_factory=Counter)
    margins: dict[str, array] = field(default_factory=dict)
    pair_tokens: dict[str, array] = field(default_factory=dict)  # the longer side of each pair

    def add_sft(self, row: Mapping[str, Any], tokens: int) -> None:
        env = _env(row)
        if env is None:
            return
        self.sft_rows[env] += 1
        reward = _number(row.get("reward"))
        if reward is not None:
            self.rewards.setdefault(env, array("d")).append(reward)
        self.tokens.setdefault(env, array("l")).append(tokens)

    def add_dpo(self, row: Mapping[str, Any], tokens: int) -> None:
        env = _env(row)
        if env is None:
            return
        self.pairs[env] += 1
        margin = _number(row.get("margin"))
        if margin is not None:
            self.margins.setdefault(env, array("d")).append(margin)
        self.pair_tokens.setdefault(env, array("l")).append(tokens)

    def merge(self, other: EnvFigures) -> None:
        self.sft_rows.update(other.sft_rows)
        self.pairs.update(other.pairs)
        for name in ("rewards", "tokens", "margins", "pair_tokens"):
            mine: dict[str, array] = getattr(self, name)
            for env, values in getattr(other, name).items():
                mine.setdefault(env, values[:0]).extend(values)

    def summary(self, manifest: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """env -> rows, share, reward (own scale), tokens, pairs, pair share, margin, and from a manifest
        the corpus's rollouts, success policy and success rate. Empty when no row names an environment."""
        corpus = ((manifest or {}).get("inventory") or {}).get("environments") or {}
        policy = ((manifest or {}).get("accounting") or {}).get("environments") or {}
        envs = sorted(set(self.sft_rows) | set(self.pairs) | set(corpus))
        if not (self.sft_rows or self.pairs):
            return {}
        rows, pairs = self.sft_rows.total(), self.pairs.total()
        out: dict[str, Any] = {}
        for env in envs:
            entry: dict[str, Any] = {
                "sft_rows": self.sft_rows[env],
                "sft_share": self.sft_rows[env] / rows if rows else 0.0,
                "reward": _brief(self.rewards.get(env, array("d"))),
                "tokens": _brief(self.tokens.get(env, array("l"))),
                "pairs": self.pairs[env],
                "pair_share": self.pairs[env] / pairs if pairs else 0.0,
                "margin": _brief(self.margins.get(env, array("d"))),
            }
            if env in corpus:
                entry["rollouts"] = corpus[env].get("rollouts")
                entry["corpus_reward"] = corpus[env].get("reward")
                entry["success_rate"] = corpus[env].get("success_rate")
            if env in policy:
                entry["success"] = policy[env].get("success")
            out[env] = entry
        return out


def mix_rows(manifest: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The release's mixes as table rows: kind, environment, wanted and achieved share, rows, short by."""
    mixes = ((manifest or {}).get("accounting") or {}).get("mix") or {}
    out = []
    for kind, plan in mixes.items():
        for env, wanted in plan.get("weights", {}).items():
            out.append(
                {
                    "kind": kind,
                    "env": env,
                    "wanted": wanted,
                    "achieved": plan["achieved"].get(env, 0.0),
                    "rows": plan["taken"].get(env, 0),
                    "supply": plan["supply"].get(env, 0),
                    "short": plan["short"].get(env),
                }
            )
    return out


def environment_table(envs: Mapping[str, Any]) -> Any:
    """The terminal's per-environment table (rich): rows and share, rewards on its own scale, success rate,
    pairs. Names come from data: escaped."""
    from rich.markup import escape
    from rich.table import Table

    from rollforge.report.fmt import count, num, pct

    table = Table(title="environments (rewards on each one's own scale)", title_justify="left")
    for col in ("environment", "SFT rows", "share", "reward min", "median", "max", "success rate", "pairs"):
        table.add_column(col, justify="left" if col == "environment" else "right")
    for name, e in envs.items():
        r = e.get("reward") or e.get("corpus_reward") or {}
        rate = e.get("success_rate")
        table.add_row(
            escape(name),
            count(e["sft_rows"]),
            pct(e["sft_share"]),
            *(num(r.get(k)) for k in ("min", "median", "max")),
            pct(rate) if rate is not None else "–",
            count(e["pairs"]),
        )
    return table
