"""What a run leaves beside the model: ``training_metrics.json`` and a ``loss.png`` curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rollforge.io.atomic import atomic_file

METRICS_FILE = "training_metrics.json"
PLOT_FILE = "loss.png"


def split_log_history(log_history: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-logging-step training entries and evaluation entries from ``trainer.state.log_history``.

    The history also holds one end-of-training summary entry (``train_loss``, ``train_runtime``): it is neither.
    After ``--resume`` the history includes the steps of the earlier run, so the curve is complete.
    """
    train_log = [entry for entry in log_history if "loss" in entry]
    eval_log = [entry for entry in log_history if "eval_loss" in entry]
    return train_log, eval_log


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """Strict JSON, like ``--json`` prints: a diverged run's NaN loss is written as null, not as ``NaN``."""
    with atomic_file(path) as fh:
        fh.write(orjson.dumps(metrics, option=orjson.OPT_INDENT_2) + b"\n")


def plot_loss(path: Path, metrics: dict[str, Any]) -> None:
    """A loss-versus-step chart; evaluation losses, when there are any, as a second series."""
    fig = Figure(figsize=(8, 4.5), dpi=120, layout="constrained")  # a bare Figure renders with Agg
    ax = fig.subplots()
    train = metrics["log"]
    ax.plot(
        [e["step"] for e in train], [e["loss"] for e in train], marker="o", markersize=3, label="train loss"
    )
    if metrics["eval_log"]:
        evals = metrics["eval_log"]
        ax.plot([e["step"] for e in evals], [e["eval_loss"] for e in evals], marker="s", label="eval loss")
    ax.set_title(f"{metrics['method'].upper()} loss: {metrics['model']}", fontsize=11)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend()
    with atomic_file(path) as fh:
        fig.savefig(fh, format="png")
