"""The report's figures: matplotlib (Agg, no pyplot state) rendered to base64 PNG for embedding in the HTML.

Each function returns None when there is nothing to plot, so the page shows numbers only.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rollforge.parallel import default_workers, run_calls
from rollforge.report.data import ReportData
from rollforge.report.fmt import num

DPI = 100
# In page order.
FIGURES = (
    "drops",
    "tasks",
    "sft_reward",
    "dpo_reward",
    "tokens",
    "dpo_tokens",
    "messages",
    "turns",
    "margin",
    "pairs_per_prompt",
)
WIDTH, HEIGHT = 5.8, 3.2  # inches: 580 x 320 px, shown unscaled two to a row on a 1280 px page
BLUE, GREEN, RED, ORANGE, PURPLE, GREY = "#3b6ea8", "#3a9a5b", "#c8553d", "#e09f3e", "#7b5ea7", "#6b7280"
MAX_DISCRETE = 12  # at most this many distinct values: one bar per value rather than a histogram
MAX_INTEGER_SPAN = 40  # integers spanning at most this: one bar per integer
MAX_BINS = 40
MAX_CATEGORIES = 15  # bars in a category chart; the rest are summed into "other"
LABEL_CHARS = 32

STYLE: dict[Any, Any] = {
    "text.parse_math": False,  # labels come from data (task types): "$" must not start mathtext
    "font.size": 10,
    "legend.fontsize": 9,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": "#e5e7eb",
    "axes.axisbelow": True,
}

Series = tuple[str, np.ndarray, str]  # label, values, colour


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    # No bbox_inches="tight": constrained layout already fits the labels, and a tight box costs another draw.
    with warnings.catch_warnings():  # extreme values (a reward of 1e200) squeeze the layout: drawn anyway
        warnings.filterwarnings("ignore", "constrained_layout not applied", UserWarning)
        fig.savefig(buf, format="png", dpi=DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _axes(
    title: str, xlabel: str, ylabel: str, height: float = HEIGHT, counts: str = "y"
) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    (ax.yaxis if counts == "y" else ax.xaxis).set_major_locator(
        MaxNLocator(nbins=6, integer=True)
    )  # no "0.5 rows"
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig, ax


def _distribution(ax: Axes, series: Sequence[Series], integer: bool = False) -> None:
    """Bars per value when values are few (rewards 0/1, turns 1..8), else a histogram on shared bins."""
    # Rounded so that float noise (1.0 - 0.7 = 0.30000000000000004) does not make a distinct value.
    series = [(label, np.round(v, 9), colour) for label, v, colour in series]
    values = np.concatenate([v for _, v, _ in series])
    distinct = np.unique(values)
    span = distinct[-1] - distinct[0]
    if len(distinct) <= MAX_DISCRETE or (integer and span <= MAX_INTEGER_SPAN):
        positions = np.arange(distinct[0], distinct[-1] + 1) if integer else distinct
        gap = float(np.min(np.diff(positions))) if len(positions) > 1 else max(abs(float(positions[0])), 1.0)
        width = 0.8 * gap / len(series)
        for i, (label, v, colour) in enumerate(series):
            counts = [int(np.count_nonzero(v == p)) for p in positions]
            ax.bar(positions + (i - (len(series) - 1) / 2) * width, counts, width, label=label, color=colour)
        if len(positions) <= MAX_DISCRETE:
            ax.set_xticks(positions, [num(p.item()) for p in positions])
        if len(positions) < 5:  # one or two wide bars read as a wall: leave room around them
            middle, room = (positions[0] + positions[-1]) / 2, max(span / 2, 2 * gap)
            ax.set_xlim(middle - room - gap, middle + room + gap)
        return
    edges = np.histogram_bin_edges(values, bins="auto")
    if len(edges) > MAX_BINS + 1:
        edges = np.linspace(distinct[0], distinct[-1], MAX_BINS + 1)
    if len(series) == 1:
        label, v, colour = series[0]
        ax.hist(v, bins=edges.tolist(), label=label, color=colour, edgecolor="white", linewidth=0.5)
        return
    for label, v, colour in series:  # overlaid: light fills, each outlined in its own colour
        ax.hist(v, bins=edges.tolist(), color=colour, alpha=0.25, histtype="stepfilled")
        ax.hist(v, bins=edges.tolist(), label=label, color=colour, linewidth=1.6, histtype="step")


def _vline(ax: Axes, x: float, label: str, colour: str = GREY) -> None:
    ax.axvline(x, color=colour, linestyle="--", linewidth=1.4, label=label, zorder=3)  # above the bars


def histogram(
    title: str,
    xlabel: str,
    ylabel: str,
    series: Sequence[Series],
    *,
    integer: bool = False,
    lines: Sequence[tuple[float, str, str]] = (),
) -> str | None:
    """A distribution of one or more series (overlaid), with optional labelled reference lines."""
    series = [s for s in series if len(s[1])]
    if not series:
        return None
    with rc_context(STYLE):
        fig, ax = _axes(title, xlabel, ylabel)
        _distribution(ax, series, integer)
        for x, label, colour in lines:
            _vline(ax, x, label, colour)
        if len(series) > 1 or lines:
            ax.legend(frameon=False)
        return _png(fig)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def categories(
    title: str, xlabel: str, counts: dict[str, int], colours: dict[str, str] | None = None
) -> str | None:
    """Horizontal bars, largest on top; past MAX_CATEGORIES the rest are summed into one "other" bar."""
    if not counts:
        return None
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    if len(items) > MAX_CATEGORIES:
        rest = sum(v for _, v in items[MAX_CATEGORIES - 1 :])
        items = [*items[: MAX_CATEGORIES - 1], (f"other ({len(items) - MAX_CATEGORIES + 1} kinds)", rest)]
    labels = [_short(k) for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    colour = [(colours or {}).get(k, BLUE) for k, _ in items][::-1]
    with rc_context({**STYLE, "axes.grid.axis": "x"}):
        fig, ax = _axes(title, xlabel, "", height=min(1.2 + 0.32 * len(items), 7.0), counts="x")
        bars = ax.barh(range(len(items)), values, color=colour)
        ax.set_yticks(range(len(items)), labels)
        ax.bar_label(bars, [num(v) for v in values], padding=3, fontsize=9)
        ax.margins(x=0.12)
        return _png(fig)


def drop_reasons(data: ReportData) -> str | None:
    """Where lines were lost: rejected by the reader, filtered from SFT, left unpaired for DPO."""
    acc = data.accounting or {}
    stages = (
        ("rejected", acc.get("rejected"), RED),
        ("filtered", (acc.get("sft") or {}).get("filtered"), ORANGE),
        ("unpaired", (acc.get("dpo") or {}).get("unpaired"), PURPLE),
    )
    counts: dict[str, int] = {}
    colours: dict[str, str] = {}
    for stage, reasons, colour in stages:
        for reason, n in (reasons or {}).items() if isinstance(reasons, dict) else ():
            if isinstance(n, int) and n:
                counts[f"{stage}: {reason}"] = n
                colours[f"{stage}: {reason}"] = colour
    return categories("Drop reasons", "lines / prompts", counts, colours)


def _margin_lines(margins: Sequence[float], threshold: float) -> list[tuple[float, str, str]]:
    if not len(margins):
        return []
    median = float(np.median(margins))
    return [
        (median, f"median {num(median)}", GREY),
        (threshold, f"threshold {num(threshold)}", ORANGE),
    ]


def figures(data: ReportData, workers: int | None = 1) -> dict[str, str]:
    """Every figure the report has data for, by name; drawn on up to ``workers`` cores (None: all): drawing
    is most of a report's time."""
    workers = max(1, workers or default_workers())
    parts = [list(FIGURES[i::workers]) for i in range(workers)]
    drawn: dict[str, str | None] = {}
    for part in run_calls([(draw, (names, data)) for names in parts if names], workers):
        drawn.update(part)
    return {name: png for name in FIGURES if (png := drawn.get(name))}


def draw(names: Sequence[str], data: ReportData) -> dict[str, str | None]:
    """The named figures (None where there is nothing to plot)."""
    makers = _makers(data)
    assert tuple(makers) == FIGURES, "FIGURES lists every figure, in page order"
    return {name: makers[name]() for name in names}


def _makers(data: ReportData) -> dict[str, Callable[[], str | None]]:
    sft, dpo, tok = data.sft, data.dpo, data.tokens
    arr = np.asarray
    token_lines = [(tok.max_tokens, f"--max-tokens {num(tok.max_tokens)}", RED)] if tok.max_tokens else []
    if token_lines and len(sft.tokens) and tok.max_tokens and tok.max_tokens > 2 * max(sft.tokens):
        token_lines = []  # a limit far to the right would squash the histogram; the table still states it
    return {
        "drops": lambda: drop_reasons(data),
        "tasks": lambda: categories("Rows per task type", "rows", data.task_types),
        "sft_reward": lambda: histogram("SFT reward", "reward", "rows", [("SFT", arr(sft.rewards), BLUE)]),
        "dpo_reward": lambda: histogram(
            "DPO rewards: chosen vs rejected", "reward", "pairs",
            [("chosen", arr(dpo.chosen_rewards), GREEN), ("rejected", arr(dpo.rejected_rewards), RED)],
        ),
        "tokens": lambda: histogram(f"SFT {tok.label}", tok.label, "rows", [("SFT", arr(sft.tokens), BLUE)], lines=token_lines),
        "dpo_tokens": lambda: histogram(
            f"DPO {tok.label}", tok.label + " (prompt + side)", "pairs",
            [("chosen", arr(dpo.chosen_tokens), GREEN), ("rejected", arr(dpo.rejected_tokens), RED)],
        ),
        "messages": lambda: histogram("Messages per SFT row", "messages", "rows", [("SFT", arr(sft.messages), BLUE)], integer=True),
        "turns": lambda: histogram("Assistant turns per SFT row", "assistant turns", "rows", [("SFT", arr(sft.turns), BLUE)], integer=True),
        "margin": lambda: histogram(
            "DPO reward margin (chosen − rejected)", "margin", "pairs", [("pairs", arr(dpo.margins), PURPLE)],
            lines=_margin_lines(dpo.margins, data.thresholds["min_median_margin"]),
        ),
        "pairs_per_prompt": lambda: histogram(
            "DPO pairs per prompt", "pairs", "prompts",
            [("prompts", np.repeat(list(dpo.pairs_per_prompt()), list(dpo.pairs_per_prompt().values())), PURPLE)],
            integer=True,
        ),
    }  # fmt: skip
