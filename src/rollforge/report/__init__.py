"""The validation report: NeMo Gym's pre-training checklist (size, rewards, lengths, diversity) made real.

``compute_report`` streams SFT rows and DPO pairs into a :class:`ReportData`; ``render_html`` /
``write_report`` make the self-contained HTML page, ``render_terminal`` the rich summary, and
``report_paths`` reads release directories, released JSONL files or rollouts (``rollforge report``).
"""

from rollforge.report.compute import ReportBuilder, compute_report
from rollforge.report.data import Check, ReportData, TokenInfo
from rollforge.report.html import render_html, write_report
from rollforge.report.inputs import report_paths
from rollforge.report.terminal import render_terminal

__all__ = [
    "Check",
    "ReportBuilder",
    "ReportData",
    "TokenInfo",
    "compute_report",
    "render_html",
    "render_terminal",
    "report_paths",
    "write_report",
]
