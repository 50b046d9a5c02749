"""Benchmark runs -> markdown tables, the issues' targets marked PASS/FAIL, and benchmarks/RESULTS.md."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import psutil

COLUMNS = ("rollouts", "command", "who", "workers", "wall s", "MB/s", "rollouts/s", "peak PSS tree MB",
           "largest process RSS MB", "RSS sum MB", "rows out", "tutorial time / this", "1 worker time / 2")  # fmt: skip
FLAT_SHARE, FLAT_MB = 0.2, 20  # "flat": grows by at most 20% or 20 MB, whichever is larger
MAX_RSS_MB = 300


def _find(runs: list[Any], **match: Any) -> Any:
    return next((r for r in runs if all(getattr(r, k) == v for k, v in match.items())), None)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _ratio(numerator: Any, denominator: Any) -> float | None:
    return numerator.seconds / denominator.seconds if numerator and denominator else None


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def tables(runs: list[Any], corpora: list[Any]) -> str:
    """The throughput table, then peak memory by corpus size."""
    mb = {c.rollouts: c.bytes / 1e6 for c in corpora}
    lines = [_row(list(COLUMNS)), _row(["---:", "---", "---", *["---:"] * (len(COLUMNS) - 3)])]
    for r in runs:
        tutorial = _find(runs, rollouts=r.rollouts, command=r.command, who="tutorial")
        one = _find(runs, rollouts=r.rollouts, command=r.command, who=r.who, workers=1)
        lines.append(_row([
            f"{r.rollouts:,}", r.command, r.who, str(r.workers), f"{r.seconds:.2f}",
            f"{mb[r.rollouts] / r.seconds:,.1f}", f"{r.rollouts / r.seconds:,.0f}", f"{r.peak_tree_mb:,.0f}",
            f"{r.peak_single_mb:,.0f}", f"{r.peak_rss_sum_mb:,.0f}", "" if r.rows is None else f"{r.rows:,}",
            _x(_ratio(tutorial, r)) if r.who == "rollforge" else "",
            _x(_ratio(one, r)) if r.who == "rollforge" and r.workers > 1 else "",
        ]))  # fmt: skip
    return "\n".join(lines) + "\n\n" + memory_table(runs)


def memory_table(runs: list[Any]) -> str:
    """Peak PSS of the tree per corpus size: does memory stay flat as the input grows?"""
    sizes = sorted({r.rollouts for r in runs})
    head = ["command", "who", "workers", *[f"peak MB at {s:,}" for s in sizes], "change"]
    lines = [_row(head), _row(["---", "---", *["---:"] * (len(head) - 2)])]
    for command, who, workers in dict.fromkeys((r.command, r.who, r.workers) for r in runs):
        peaks = [_find(runs, rollouts=s, command=command, who=who, workers=workers) for s in sizes]
        cells = [f"{p.peak_tree_mb:,.0f}" if p else "" for p in peaks]
        lines.append(_row([command, who, str(workers), *cells, _change(peaks[0], peaks[-1])]))
    return "\n".join(lines)


def _change(small: Any, big: Any) -> str:
    if not (small and big) or small is big:
        return ""
    grow = big.peak_tree_mb - small.peak_tree_mb
    return f"{grow:+,.0f} MB ({grow / small.peak_tree_mb:+.0%})"


def _workers(n: int) -> str:
    return f"{n} worker{'s' * (n > 1)}"


def _mark(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def _flat(small: Any, big: Any) -> bool:
    return big.peak_tree_mb - small.peak_tree_mb <= max(FLAT_SHARE * small.peak_tree_mb, FLAT_MB)


def verdicts(runs: list[Any]) -> str:
    """Each target of the issues, PASS or FAIL, with the figures it was judged on (every size measured)."""
    lines = [
        _speedup(runs, "sft", 8, "issue 3"),
        _speedup(runs, "dpo", 8, "issue 3"),
        _speedup(runs, "build", 10, "issue 7"),
        _scaling(runs, "build", 1.6, "issue 7"),
        _max_rss(runs, "issues 3, 7"),
        *[_flat_memory(runs, c, "issue 2" if c == "inspect" else "issues 3, 7") for c in _commands(runs)],
    ]
    return "\n".join(line for line in lines if line)


def _commands(runs: list[Any]) -> list[str]:
    return list(dict.fromkeys(r.command for r in runs if r.who == "rollforge"))


def _per_size(runs: list[Any], pair: Any) -> list[tuple[int, float]]:
    """(size, ratio) wherever both runs of ``pair(size)`` were measured."""
    figures = [(s, _ratio(*pair(s))) for s in sorted({r.rollouts for r in runs})]
    return [(s, f) for s, f in figures if f is not None]


def _speedup(runs: list[Any], command: str, target: float, issue: str) -> str:
    def versus(workers: int) -> list[tuple[int, float]]:
        ours = {"command": command, "who": "rollforge", "workers": workers}
        return _per_size(runs, lambda s: (_find(runs, rollouts=s, command=command, who="tutorial"),
                                          _find(runs, rollouts=s, **ours)))  # fmt: skip

    two, one = versus(2), versus(1)
    if not two:
        return ""
    shown = ", ".join(f"{_x(f)} at {s:,}" for s, f in two)
    ones = f" (1 worker: {', '.join(_x(f) for _, f in one)})" if one else ""
    ok = all(f >= target for _, f in two)
    claim = f"`{command}` >= {target:g}x the tutorial with 2 workers ({issue})"
    return f"- {_mark(ok)} {claim}: {shown} rollouts{ones}"


def _scaling(runs: list[Any], command: str, target: float, issue: str) -> str:
    ours = {"command": command, "who": "rollforge"}
    figures = _per_size(runs, lambda s: (_find(runs, rollouts=s, workers=1, **ours),
                                         _find(runs, rollouts=s, workers=2, **ours)))  # fmt: skip
    if not figures:
        return ""
    shown = ", ".join(f"{_x(f)} at {s:,}" for s, f in figures)
    ok = all(f >= target for _, f in figures)
    claim = f"`{command}` with 2 workers >= {target:g}x faster than with 1 ({issue})"
    return f"- {_mark(ok)} {claim}: {shown} rollouts"


def _max_rss(runs: list[Any], issue: str) -> str:
    ours = [r for r in runs if r.who == "rollforge"]
    if not ours:
        return ""
    worst = max(ours, key=lambda r: r.peak_tree_mb)
    where = f"`{worst.command}`, {_workers(worst.workers)}, {worst.rollouts:,} rollouts"
    claim = f"peak memory (PSS) of the process tree < {MAX_RSS_MB} MB for every command, size and worker count ({issue})"
    return (
        f"- {_mark(worst.peak_tree_mb < MAX_RSS_MB)} {claim}: at most {worst.peak_tree_mb:,.0f} MB ({where})"
    )


def _flat_memory(runs: list[Any], command: str, issue: str) -> str:
    ours = [r for r in runs if r.who == "rollforge" and r.command == command]
    small, big = min(r.rollouts for r in ours), max(r.rollouts for r in ours)
    pairs = [(_find(ours, rollouts=small, workers=w), _find(ours, rollouts=big, workers=w))
             for w in sorted({r.workers for r in ours})]  # fmt: skip
    pairs = [(a, b) for a, b in pairs if a and b]
    if small == big or not pairs:
        return ""
    shown = "; ".join(
        f"{_workers(a.workers)}: {a.peak_tree_mb:,.0f} -> {b.peak_tree_mb:,.0f} MB" for a, b in pairs
    )
    ok = all(_flat(a, b) for a, b in pairs)
    claim = (
        f"`{command}` memory flat from {small:,} to {big:,} rollouts ({big / small:.1f}x the input; {issue})"
    )
    return f"- {_mark(ok)} {claim}: {shown}"


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
               platform.processor() or "unknown CPU")  # fmt: skip
    return (f"{cpu}; {psutil.cpu_count()} cores; {psutil.virtual_memory().total / 2**30:.0f} GiB RAM; "
            f"Python {platform.python_version()}; {platform.platform()}")  # fmt: skip


def corpus_lines(corpora: list[Any]) -> list[str]:
    lines = []
    for c in corpora:
        total = sum(p.stat().st_size for p in c.folder.iterdir())
        envs = ", ".join(f"{name} {n:,}" for name, n in c.per_environment.items())
        sizes = f"{c.bytes / 1e6:,.0f} MB of rollouts files, {c.bytes / c.rollouts / 1e3:.1f} KB a rollout"
        total_mb = f"{total / 1e6:,.0f} MB with the companion files"
        lines.append(f"- {c.rollouts:,} rollouts (asked for {c.size:,}): {sizes}, {total_mb}; {envs}")
    return lines


def tutorial_memory(runs: list[Any]) -> str:
    tutorial = [r for r in runs if r.who == "tutorial"]
    if not tutorial:
        return "The tutorial was not measured."
    sizes = sorted({r.rollouts for r in tutorial})
    peaks = {
        command: " -> ".join(f"{r.peak_tree_mb:,.0f}" for r in tutorial if r.command == command)
        for command in dict.fromkeys(r.command for r in tutorial)
    }
    shown = "; ".join(f"`{command}` {mb} MB" for command, mb in peaks.items())
    return (
        "The tutorial is one process. Its `sample_for_review` loads a whole rollouts file into a list and "
        "`create_dpo_pairs` holds every filtered rollout of a file in a dict, so its memory grows with the "
        f"largest input file. Peak memory at {' -> '.join(f'{s:,}' for s in sizes)} rollouts: {shown}."
    )


def document(runs: list[Any], corpora: list[Any], reproduce: str, load: tuple[float, float]) -> str:
    return "\n".join([
        "# Benchmarks", "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on: {machine()}.",
        f"1-minute load average {load[0]:.1f} before and {load[1]:.1f} after the runs "
        f"({psutil.cpu_count()} cores): a figure near the core count means other work shared the machine "
        "and the timings are noisy.", "",
        f"Reproduce: `{reproduce}` (options: `python benchmarks/run.py --help`).", "",
        "## Corpus", "",
        "Generated by `rollforge example --no-bad-lines` (the tutorial's code stops at the first bad line): "
        "three environments (multi-step tool calling; math reasoning with token ids and log probs on the "
        "model's items; multi-turn support chat), 4 rollouts per prompt, shuffled, with NeMo Gym's companion "
        "files. The tutorial is given the three rollouts files, rollforge the directory (it also joins the "
        "companions).", "",
        *corpus_lines(corpora), "",
        "## What is measured", "",
        "Each run is a fresh process, after the corpus was read once into the page cache. Wall time includes "
        "interpreter start-up and is the median of the timed runs, which nobody polls (polling a 10 s build "
        "takes ~1 s of CPU, which a 2-worker run on 2 cores would pay and a 1-worker run would not). Memory "
        "comes from one more run: the largest PSS summed over the process tree (parent and workers, polled "
        "every 20 ms; PSS counts a page that forked workers share with the parent once, split between them), "
        "beside the RSS of the largest single process and the RSS summed over the tree (an upper bound: it "
        "counts each shared page once per process). The memory targets are judged on PSS. MB/s and "
        "rollouts/s are the rollouts files' size and count over wall time.", "",
        "- `inspect --json`: read and convert every rollout (issue 2); the tutorial has no counterpart.",
        "- `sft`: the tutorial's filter + `process_sft_data`; rollforge `sft` with the same filters "
        "(`--min-reward 0.7 --success-only --min-items 3 --max-items 15`).",
        "- `dpo`: the tutorial's filter + `create_dpo_pairs`; rollforge `dpo` with its defaults (groups all "
        "rollouts by prompt, best-worst pairs with margin 0.1).",
        "- `sample`: the tutorial's `sample_for_review` (50 per file); rollforge `sample` (50 in all).",
        "- `build`: all four tutorial steps; rollforge `build` (defaults plus the same filters): SFT and DPO "
        "splits, formats, review sample, report, manifest.",
        "- rows out: lines written (sft rows, dpo pairs, sampled rollouts); the two sides' rules differ, so "
        "read the ratio beside them.", "",
        "## Results", "",
        tables(runs, corpora), "",
        tutorial_memory(runs), "",
        "## Targets", "",
        f"Flat means the peak grows by at most {FLAT_SHARE:.0%} or {FLAT_MB} MB, whichever is larger, from "
        "the smallest corpus to the largest.", "",
        verdicts(runs), "",
    ])  # fmt: skip
