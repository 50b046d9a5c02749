"""The per-round table of ``rollforge iterate``: data size, train loss, held-out reward with its CI, the change
from the round before (paired 95% CI, p), and the wall time of each step."""

from __future__ import annotations

from typing import Any

HEADER = (
    "| round | model | data rows | train loss | held-out reward [95% CI] | Δ vs previous [95% CI] | p "
    "| wall s (collect / build / train / eval) |"
)


def _num(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _p(delta: dict[str, Any]) -> str:
    p = delta.get("p_value")
    if p is None:
        return "–"
    # 10,000 random sign flips cannot show a p below 1/10,001: at that floor the p is an upper bound.
    floor = delta.get("p_value_method") == "monte_carlo" and p < 2e-4
    return "< 1e-4" if floor else f"{p:.3g}"


def _delta(compare: dict[str, Any] | None) -> tuple[str, str]:
    if not compare or compare["delta"]["mean_reward"] is None:
        return "–", "–"
    delta = compare["delta"]
    low, high = delta["ci95"]
    return f"{delta['mean_reward']:+.3f} [{low:+.3f}, {high:+.3f}]", _p(delta)


def row(record: dict[str, Any]) -> str:
    ev = record["eval"]
    train = record.get("train", {})
    walls = " / ".join(
        _num(record.get(step, {}).get("wall_s"), 1) for step in ("collect", "build", "train", "eval")
    )
    low, high = ev["ci95"]
    change, p = _delta(record.get("compare"))
    data = record.get("build", {}).get("rows", "–")
    model = ev["model"].rsplit("/", 1)[-1]
    return (
        f"| {record['round']} | {model} | {data} | {_num(train.get('train_loss'))} "
        f"| {ev['mean_reward']:.3f} [{low:.3f}, {high:.3f}] | {change} | {p} | {walls} |"
    )


def markdown_table(result: dict[str, Any]) -> str:
    recipe = result["recipe"]
    arm = "control (rewards shuffled before filtering)" if recipe["control"] else recipe["method"].upper()
    lines = [
        f"# rollforge iterate: {arm}, {recipe['rounds']} rounds, {recipe['samples']} samples per training task",
        "",
        HEADER,
        "|" + "---|" * HEADER.count(" | ") + "---|",
        *(row(record) for record in result["rounds"]),
        "",
    ]
    total = result["total"]
    change, p = _delta(total)
    lines.append(
        f"base -> round {recipe['rounds']}: Δ {change}, p {p}, over {total['n_paired']} held-out tasks; "
        f"{total['verdict']}"
    )
    return "\n".join(lines) + "\n"
