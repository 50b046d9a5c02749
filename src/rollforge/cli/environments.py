"""The command line's side of many environments: the success-policy flags inspect shares with the dataset
commands, the per-environment table, and the mix's lines in a summary."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from rollforge.cli.options import EnvValue
from rollforge.filters import ENV_FIELD, SUCCESS_FIELD, SUCCESS_THRESHOLD
from rollforge.mix import describe_mix


def add_policy_args(parser: argparse.ArgumentParser) -> None:
    """--success-threshold [NAME=]T (repeatable), --success-field, --env-field: the policy inspect counts
    successes under."""
    group = parser.add_argument_group("environments and success")
    group.add_argument(
        SUCCESS_THRESHOLD.flag,
        action=EnvValue,
        metavar="[NAME=]T",
        default=SUCCESS_THRESHOLD.default,
        help="success means reward >= T (default: 1.0); NAME=T: environment NAME's own threshold (repeat "
        "it); NAME=max: its best observed reward (assumes its top reward means solved)",
    )
    group.add_argument(SUCCESS_FIELD.flag, metavar=SUCCESS_FIELD.metavar, help=SUCCESS_FIELD.help)
    group.add_argument(ENV_FIELD.flag, metavar=ENV_FIELD.metavar, help=ENV_FIELD.help)


def render_environments(envs: dict[str, Any], warnings: list[str], console: Console) -> None:
    """One row per environment: rollouts, rejects, reward min / median / max, distinct values, success;
    then the warnings on them (scales, thresholds, environments without a success)."""
    if len(envs) < 2:  # one environment: the tables above say it all
        return
    table = Table(title="environments (rewards on each one's own scale)", title_justify="left")
    cols = ("environment", "rollouts", "rejected", "min", "median", "max", "distinct", "success", "policy")
    for col in cols:
        table.add_column(col, justify="left" if col in ("environment", "policy") else "right")
    for name, e in envs.items():
        r = e.get("reward")
        cells = [f"{r[k]:.4g}" for k in ("min", "median", "max")] + [str(r["distinct"])] if r else ["-"] * 4
        rate = f"{e['success_rate']:.0%}" if "success_rate" in e else "-"
        policy = e.get("success", "-").replace("reward ", "").split(" (")[0]
        table.add_row(name, str(e["rollouts"]), str(e["rejected"]), *cells, rate, policy)
    console.print(table)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    assumed = sorted(name for name, e in envs.items() if "(" in e.get("success", ""))
    if assumed:
        note = envs[assumed[0]]["success"].split(" (", 1)[1][:-1]
        console.print(f"success: max for {', '.join(assumed)}: {note}")


def print_environments(acc: dict[str, Any], console: Console) -> None:
    """After the accounting table: each mix (achieved shares, shortfalls), and the environments whose
    success is not the global one (a `max` with its assumption)."""
    for kind, plan in acc.get("mix", {}).items():
        console.print(f"mix ({kind}, seeded; weights normalised):")
        for line in describe_mix(plan):
            console.print(f"  {line}")
    margin = acc.get("margin")
    if margin and margin["scale"] == "range":
        per_env = ", ".join(f"{env} {m:g}" for env, m in margin.get("per_env", {}).items())
        console.print(f"margin: {margin['min_margin']:g} of each environment's reward range ({per_env})")
    elif margin:
        console.print(
            f"margin: {margin['min_margin']:g} in reward units, every environment (--margin-scale absolute)"
        )
    envs = acc.get("environments", {})
    policies = {e["success"] for e in envs.values()}
    if len(policies) > 1:
        common = max(policies, key=lambda p: sum(e["success"] == p for e in envs.values()))
        console.print(f"success: {common}, except")
        for name, e in envs.items():
            if e["success"] != common:
                console.print(f"  {name}: {e['success']}")
