"""Did training help? Compare a baseline and a candidate rollouts file (``rollforge compare``)."""

from rollforge.compare.compare import CompareOptions, compare, verdict
from rollforge.compare.html import render_html, write_html
from rollforge.compare.stats import (
    mean_pass_at_k,
    paired_bootstrap_ci,
    pass_at_k,
    permutation_p_value,
    wins_losses_ties,
)
from rollforge.compare.terminal import render

__all__ = [
    "CompareOptions",
    "compare",
    "mean_pass_at_k",
    "paired_bootstrap_ci",
    "pass_at_k",
    "permutation_p_value",
    "render",
    "render_html",
    "verdict",
    "wins_losses_ties",
    "write_html",
]
