"""A compact terminal summary of a report: the checklist, the key numbers, the warnings.

Text from data (task types, paths) is escaped: rich would otherwise read "[red]x" in a task type as markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rollforge.report.data import PASS, WARN, ReportData
from rollforge.report.environments import environment_table
from rollforge.report.fmt import count, num, pct
from rollforge.report.lengths import describe_length
from rollforge.report.metrics import UNSPLIT, describe

MARKS = {PASS: "[green]✓ pass[/]", WARN: "[yellow]! warn[/]"}


def _numbers(data: ReportData) -> Table:
    table = Table(title="numbers", show_header=False, title_justify="left")
    sft, dpo = data.sft, data.dpo
    for split in data.split_names():
        name = "unsplit" if split == UNSPLIT else split
        table.add_row(
            f"{name}",
            f"{count(sft.rows_by_split[split])} SFT rows, {count(dpo.pairs_by_split[split])} DPO pairs",
        )
    table.add_row("prompts", count(data.prompts))
    acc = data.accounting or {}
    if isinstance(acc.get("lines"), int) and isinstance(acc.get("rejected"), dict):
        rejected = sum(n for n in acc["rejected"].values() if isinstance(n, int))
        table.add_row("input lines", f"{count(acc['lines'])}, {count(rejected)} rejected")
    largest = data.largest_task
    if largest:
        table.add_row(
            "task types",
            escape(
                f"{len(data.task_types)}, entropy {data.task_entropy:.2f}, largest {largest[0]!r} {pct(largest[1])}"
            ),
        )
    if len(sft.rewards):
        r = describe(sft.rewards)
        table.add_row(
            "SFT reward", f"mean {num(r['mean'])}, min {num(r['min'])}, median {num(r['quantiles']['p50'])}"
        )
    if sft.rows:
        t = describe(sft.tokens)
        table.add_row(
            escape(data.tokens.label),
            f"median {num(t['quantiles']['p50'])}, p90 {num(t['quantiles']['p90'])}, max {num(t['max'])}",
        )
        table.add_row(
            "tool use / reasoning", f"{pct(sft.tool_rows / sft.rows)} / {pct(sft.reasoning_rows / sft.rows)}"
        )
        table.add_row("duplicate answers", f"{count(sft.duplicates)} ({pct(sft.duplicates / sft.rows)})")
    for kind, entry in data.sequence_lengths().items():
        table.add_row(
            f"{kind.upper()} max length", describe_length(entry, "rows" if kind == "sft" else "pairs")
        )
    if len(dpo.margins):
        m = describe(dpo.margins)
        table.add_row(
            "DPO margin", f"median {num(m['quantiles']['p50'])}, min {num(m['min'])}, max {num(m['max'])}"
        )
    return table


def render_terminal(data: ReportData, console: Console) -> None:
    """Print the checklist (pass/warn per item), the main numbers and every warning with its threshold."""
    checklist = Table(title="pre-training checklist", title_justify="left")
    checklist.add_column("")
    checklist.add_column("check")
    checklist.add_column("result")
    for check in data.checks:
        checklist.add_row(MARKS.get(check.status, "[dim]– n/a[/]"), check.title, escape(check.detail))
    console.print(checklist)
    console.print(_numbers(data))
    envs = data.environments.summary(data.manifest)
    if len(envs) > 1:
        console.print(environment_table(envs))
    for warning in data.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
