"""The report as one self-contained HTML file: inline CSS, figures as base64 PNG, no external URL.

Every string that comes from data (task types, reasons, paths) goes through Jinja's autoescaping.
"""

from __future__ import annotations

import os
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from rollforge.io.target import open_output
from rollforge.report.data import ReportData
from rollforge.report.environments import mix_rows
from rollforge.report.fmt import count, num, pct
from rollforge.report.lengths import describe_length
from rollforge.report.metrics import UNSPLIT, describe
from rollforge.version import __version__

MAX_TASK_ROWS = 50  # task types listed in the table; the chart and the JSON hold them all
STAT_COLUMNS = ("count", "min", "p10", "p25", "p50", "p75", "p90", "max", "mean", "std")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("rollforge.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=num, pct=pct, count=count)
    return env


def stat_cells(stats: dict[str, Any]) -> list[str]:
    """A statistics dict (``describe``) as formatted table cells, in STAT_COLUMNS order."""
    if not stats.get("count"):
        return ["0"] + ["–"] * (len(STAT_COLUMNS) - 1)
    q = stats["quantiles"]
    return [num(stats[c] if c in stats else q[c]) for c in STAT_COLUMNS]


def _stat_tables(data: ReportData) -> dict[str, list[tuple[str, list[str]]]]:
    sft, dpo, label = data.sft, data.dpo, data.tokens.label
    rewards = [("SFT reward", describe(sft.rewards)), ("DPO chosen reward", describe(dpo.chosen_rewards)),
               ("DPO rejected reward", describe(dpo.rejected_rewards))]  # fmt: skip
    inventory = (data.manifest or {}).get("inventory")
    if isinstance(inventory, dict) and isinstance(inventory.get("reward"), dict):
        rewards.append(("all input rollouts (manifest inventory)", inventory["reward"]))
    lengths = [("SFT messages per row", describe(sft.messages)), ("SFT assistant turns per row", describe(sft.turns)),
               (f"SFT {label}", describe(sft.tokens)), (f"DPO prompt + chosen, {label}", describe(dpo.chosen_tokens)),
               (f"DPO prompt + rejected, {label}", describe(dpo.rejected_tokens))]  # fmt: skip
    return {
        "rewards": [(name, stat_cells(s)) for name, s in rewards if s.get("count")],
        "lengths": [(name, stat_cells(s)) for name, s in lengths if s.get("count")],
        "margin": [("margin", stat_cells(describe(dpo.margins)))] if len(dpo.margins) else [],
    }


def accounting_rows(acc: dict[str, Any] | None) -> list[tuple[str, str, int]]:
    """The accounting (a manifest's, or the rollouts reader's) as (label, value, indent) table rows.

    Keys the report does not know are left out, and missing ones skipped: the manifest may grow.
    """
    rows: list[tuple[str, str, int]] = []

    def reasons(title: str, counts: Any) -> None:
        if isinstance(counts, dict) and counts:
            rows.append((title, "", 0))
            rows.extend((str(reason), num(n), 1) for reason, n in counts.items())

    acc = acc or {}
    for key, label in (("lines", "input lines"), ("rollouts", "rollouts read")):
        if key in acc:
            rows.append((label, num(acc[key]), 0))
    reasons("rejected lines, by reason", acc.get("rejected"))
    for kind, noun, dropped, key in (("sft", "SFT rows written", "filtered from SFT, by reason", "filtered"),
                                     ("dpo", "DPO pairs written", "prompts left unpaired, by reason", "unpaired")):  # fmt: skip
        part = acc.get(kind)
        if not isinstance(part, dict):
            continue
        if kind == "dpo" and "prompts" in part:
            rows.append(("DPO prompts considered", num(part["prompts"]), 0))
        splits = {k: part[k] for k in ("train", "validation") if k in part} or part.get("splits") or {}
        total = part.get("written", part.get("pairs"))
        if total is not None:
            rows.append((noun, num(total), 0))
        rows.extend((f"{split}", num(n), 1) for split, n in splits.items())
        reasons(dropped, part.get(key))
    sample = acc.get("sample")
    if isinstance(sample, dict) and "rows" in sample:
        rows.append(("review sample rows", num(sample["rows"]), 0))
    return rows


def _thresholds(data: ReportData) -> list[tuple[str, str]]:
    """The thresholds this report judged with (a recipe's ``checks:`` map sets them)."""
    return [(name, num(value)) for name, value in data.thresholds.items()]


def _input_rows(data: ReportData) -> list[dict[str, Any]]:
    """A release's input files with their reward range (the manifest's inventory), for the reward scales."""
    per_file = ((data.manifest or {}).get("inventory") or {}).get("per_file") or {}
    rows = []
    for path, row in per_file.items():
        low, high = (row.get("reward") or {}).get("min"), (row.get("reward") or {}).get("max")
        known = isinstance(low, int | float) and isinstance(high, int | float)
        other = known and not (float(low) >= 0 and float(high) <= 1)  # type: ignore[arg-type]
        rows.append({
            "file": path, "rollouts": row.get("rollouts", 0), "rejected": row.get("rejected", 0),
            "low": num(low) if known else "–", "high": num(high) if known else "–",
            "scale": ("outside 0..1" if other else "0..1") if known else "no rollouts", "other": other,
        })  # fmt: skip
    return rows


def render_html(data: ReportData, workers: int | None = 1) -> str:
    """The report page (a few hundred KB: the figures are embedded, drawn on up to ``workers`` cores)."""
    from rollforge.report.plots import figures  # matplotlib loads only when a page is drawn

    summary = data.summary()
    tasks = list(data.task_types.items())
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            data=data,
            s=summary,
            plots=figures(data, workers),
            stats=_stat_tables(data),
            stat_columns=STAT_COLUMNS,
            splits=data.split_names(),
            unsplit=UNSPLIT,
            tasks=tasks[:MAX_TASK_ROWS],
            tasks_hidden=max(0, len(tasks) - MAX_TASK_ROWS),
            task_total=sum(data.task_types.values()),
            thresholds=_thresholds(data),
            inputs=_input_rows(data),
            mixes=mix_rows(data.manifest),
            version=__version__,
            manifest=data.manifest or {},
            accounting=accounting_rows(data.accounting),
            trainer_lengths=[
                f"{kind.upper()} {describe_length(entry, 'rows' if kind == 'sft' else 'pairs')}"
                for kind, entry in summary["sequence_lengths"].items()
            ],
        )
    )


def write_report(data: ReportData, path: str | os.PathLike[str], workers: int | None = 1) -> None:
    """Write the HTML report atomically (a reader never sees half a page); figures on ``workers`` cores."""
    html = render_html(data, workers)
    with open_output(str(path)) as fh:  # atomic; or stdout (-), a pipe, a device, written through
        fh.write(html.encode("utf-8"))
