"""The comparison on a terminal: side-by-side numbers, the paired result in plain words, the breakdown."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rollforge.compare.compare import p_phrase
from rollforge.compare.provenance import provenance_lines

SHOWN_IDS = 5  # prompt ids listed per side; --json lists them all


def num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def ci_text(ci: list[float] | None) -> str:
    return "–" if ci is None else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def p_text(p: float | None, at_floor: bool | None = False) -> str:
    """A p-value cell; at the permutation floor, a bound ("<= 9.999e-05")."""
    if p is None:
        return "–"
    return f"<= {p:.4g}" if at_floor else f"{p:.4g}"


def by_key(result: dict[str, Any]) -> str:
    return "by_task_type" if result["by"] == "task_type" else f"by_{result['by']}"


def summary_rows(result: dict[str, Any]) -> list[list[str]]:
    """(metric, baseline, candidate, candidate - baseline over all rollouts) rows; shared with the HTML."""
    b, c, d = result["baseline"], result["candidate"], result["delta"]
    rows = [
        ["rollouts", str(b["rollouts"]), str(c["rollouts"]), ""],
        ["prompts", str(b["prompts"]), str(c["prompts"]), ""],
        ["mean reward", num(b["mean_reward"]), num(c["mean_reward"]), num(d["mean_reward_unpaired"], True)],
        [f"success rate ({result['success']})", num(b["success_rate"]), num(c["success_rate"]),
         num(d["success_rate_unpaired"], True)],
    ]  # fmt: skip
    for k, entry in result["pass_at_k"].items():
        rows.append([f"pass@{k}", num(entry["baseline"]), num(entry["candidate"]), num(entry["delta"], True)])
    return rows


def paired_lines(result: dict[str, Any]) -> list[str]:
    """The paired analysis as sentences; shared with the HTML."""
    d = result["delta"]
    lines = [
        f"paired prompts: {result['n_paired']} (only in baseline: {len(result['only_baseline'])}, "
        f"only in candidate: {len(result['only_candidate'])})"
    ]
    if result["n_paired"]:
        lines += [
            f"mean reward difference per prompt (candidate - baseline): {num(d['mean_reward'], True)}, "
            f"95% bootstrap CI {ci_text(d['ci95'])}, permutation {p_phrase(d)} ({d['p_value_method']})",
            f"success rate difference per prompt: {num(d['success_rate'], True)}",
            f"prompts better / worse / tied: {d['wins']} / {d['losses']} / {d['ties']}",
        ]
    for side in ("baseline", "candidate"):
        ids = result[f"only_{side}"]
        if ids:
            more = f" (+{len(ids) - SHOWN_IDS} more)" if len(ids) > SHOWN_IDS else ""
            lines.append(f"only in {side}: {', '.join(ids[:SHOWN_IDS])}{more}")
    return lines


def group_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per group: group, paired, baseline mean, candidate mean, paired delta, CI, p, verdict."""
    rows = []
    for group, g in result[by_key(result)].items():
        d = g["delta"]
        word = "–" if not g["n_paired"] else g["verdict"].split(" (")[0]
        means = [
            num(g["baseline"]["mean_reward"]),
            num(g["candidate"]["mean_reward"]),
            num(d["mean_reward"], True),
        ]
        rows.append(
            [
                group,
                str(g["n_paired"]),
                *means,
                ci_text(d["ci95"]),
                p_text(d["p_value"], d["p_value_at_floor"]),
                word,
            ]
        )
    return rows


GROUP_COLUMNS = ("paired", "baseline mean", "candidate mean", "Δ mean (paired)", "95% CI", "p", "")


def render(result: dict[str, Any], console: Console) -> None:
    for line in provenance_lines(result):
        console.print(escape(line))
    table = Table(title="baseline vs candidate (all rollouts)", title_justify="left")
    for column in ("", "baseline", "candidate", "Δ"):
        table.add_column(column, justify="left" if not column else "right")
    for row in summary_rows(result):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    for line in paired_lines(result):
        console.print(escape(line))
    console.print(f"[bold]{escape(result['verdict'])}[/bold]")
    groups = Table(title=f"by {escape(result['by'])}", title_justify="left")
    groups.add_column(escape(result["by"]))
    for column in GROUP_COLUMNS:
        groups.add_column(column, justify="right")
    for group_row in group_rows(result):
        groups.add_row(*(escape(cell) for cell in group_row))
    console.print(groups)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
