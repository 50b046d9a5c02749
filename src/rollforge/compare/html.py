"""The comparison as one self-contained HTML file: inline CSS, the plot as a base64 PNG, no external asset.

Every string that comes from data (file names, task types, prompt ids) is escaped.
"""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

from rollforge.compare.provenance import provenance_lines
from rollforge.compare.terminal import GROUP_COLUMNS, by_key, group_rows, paired_lines, summary_rows
from rollforge.io.target import open_output

BLUE, GREEN, RED, GREY = "#3b6ea8", "#3a9a5b", "#c8553d", "#6b7280"
CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #111827; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border-bottom: 1px solid #e5e7eb; padding: .3rem .7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.verdict { font-weight: bold; font-size: 1.05rem; } .warn { color: #92400e; } code { font-size: 12px; }
"""


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def delta_plot(result: dict[str, Any]) -> str | None:
    """Paired mean-reward delta with its 95% CI per group (and overall), as base64 PNG; None if unpaired."""
    entries = [("all prompts", result)] + [(g, v) for g, v in result[by_key(result)].items()]
    entries = [(name, e) for name, e in entries if e["n_paired"]]
    if not entries:
        return None
    names = [f"{name[:40]} (n={e['n_paired']})" for name, e in entries]
    deltas = [e["delta"]["mean_reward"] for _, e in entries]
    lows = [d - e["delta"]["ci95"][0] for d, (_, e) in zip(deltas, entries, strict=True)]
    highs = [e["delta"]["ci95"][1] - d for d, (_, e) in zip(deltas, entries, strict=True)]
    colours = [
        GREEN if e["delta"]["ci95"][0] > 0 else RED if e["delta"]["ci95"][1] < 0 else GREY for _, e in entries
    ]
    from matplotlib import rc_context  # here, not at the top: every CLI start would pay for matplotlib
    from matplotlib.figure import Figure

    with rc_context({"text.parse_math": False, "font.size": 10}):  # labels come from data: "$" is text
        fig = Figure(figsize=(7.5, 1.2 + 0.35 * len(entries)), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        positions = list(range(len(entries)))[::-1]
        for x, y, low, high, colour in zip(deltas, positions, lows, highs, colours, strict=True):
            ax.errorbar([x], [y], xerr=[[low], [high]], fmt="o", color=colour, ecolor=colour, capsize=4)
        ax.axvline(0.0, color=BLUE, linewidth=1, linestyle="--")
        ax.set_yticks(positions, names)
        ax.set_xlabel("candidate - baseline: mean reward per prompt (95% bootstrap CI)")
        ax.set_title(f"paired delta by {result['by']}", loc="left")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render_html(result: dict[str, Any]) -> str:
    files = {side: ", ".join(result[side]["files"]) for side in ("baseline", "candidate")}
    plot = delta_plot(result)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>rollforge compare</title>",
        f"<style>{CSS}</style></head><body><h1>rollforge compare</h1>",
        f"<p>baseline: <code>{escape(files['baseline'])}</code><br>",
        f"candidate: <code>{escape(files['candidate'])}</code></p>",
        "".join(f"<p>{escape(line)}</p>" for line in provenance_lines(result)),
        f"<p class='verdict'>{escape(result['verdict'])}</p>",
        "".join(f"<p class='warn'>warning: {escape(w)}</p>" for w in result["warnings"]),
        "<h2>Summary (all rollouts)</h2>",
        _table(["", "baseline", "candidate", "Δ"], summary_rows(result)),
        "<h2>Paired analysis</h2>",
        "".join(f"<p>{escape(line)}</p>" for line in paired_lines(result)),
        f"<h2>By {escape(result['by'])}</h2>",
        _table([result["by"], *GROUP_COLUMNS], group_rows(result)),
        f"<figure><img alt='paired delta by group' src='data:image/png;base64,{plot}'></figure>" if plot else
        "<p>No paired prompts: nothing to plot.</p>",
        "</body></html>\n",
    ]  # fmt: skip
    return "".join(parts)


def write_html(result: dict[str, Any], path: str) -> None:
    """Write the page atomically: the file appears complete or not at all."""
    with open_output(path) as fh:  # atomic; or a pipe or device, written through
        fh.write(render_html(result).encode("utf-8"))
