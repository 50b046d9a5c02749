"""An output with no rows is an error, not a quiet success: the message names the top reasons the rows went
and how to get some (``--allow-empty`` accepts an empty output where one is expected)."""

from __future__ import annotations

from typing import Any

from rollforge.errors import RollforgeError
from rollforge.filters import FILTERS

ALLOW_EMPTY = "--allow-empty"
TOP = 3

# what gets rows back, per reason; a filter's reason defaults to loosening its flag
FIXES: dict[str, str] = {
    "not_success": "success means {success}: pass --no-success-only to keep every rollout, or set "
    "--success-threshold / --success-field",
    "single_rollout": "collect several rollouts per task (`rollforge collect TASKS --num-repeats 4`); "
    "--recollect FILE writes these prompts as task rows ready to collect again",
    "all_equal_rewards": "collect more rollouts per task (a higher --num-repeats and --temperature) so "
    "that rewards differ",
    "below_margin": "lower --min-margin, or collect more rollouts per task (--recollect FILE)",
    "no_eligible_chosen": "no rollout of these prompts passes the filters: loosen them (--no-success-only, "
    "a lower --min-reward)",
    "identical_trajectories": "collect more rollouts per task at a higher --temperature (--recollect FILE)",
    "no_assistant_turn": "the model produced no assistant message: check the rollouts with `rollforge inspect`",
}
REJECTED_FIX = "`rollforge inspect PATH` names each rejected line and why"
# the rejects that say the input is another kind of file (standard input is never looked at beforehand)
REJECTED_FIXES: dict[str, str] = {
    "no_response": "lines with no `response` are NeMo Gym task rows (or failed rollouts): `rollforge collect` "
    "turns task rows into rollouts",
    "no_prompt": "lines with no usable `responses_create_params` are not rollouts (chat/SFT or preference rows "
    "are training data already: `rollforge report` checks them)",
}


def refuse_empty(acc: dict[str, Any], what: str, output: str, success: str | None = None) -> None:
    """Raise when ``acc`` (a command's accounting) says nothing was written to ``output``."""
    if acc["written"]:
        return
    message, fix = why_empty(acc, what, output, success)
    allow = f"pass {ALLOW_EMPTY} to accept an empty output"
    raise RollforgeError(message, hint=f"{fix}; or {allow}" if fix else allow)


def why_empty(acc: dict[str, Any], what: str, output: str, success: str | None = None) -> tuple[str, str]:
    """(what was written and the top reasons, how to get rows) for an accounting with no row written."""
    counted: list[tuple[str, str, int]] = []  # (kind, reason, count)
    for kind in ("unpaired", "filtered", "rejected", "skipped"):  # skipped: what the format cannot hold
        counted += [(kind, reason, n) for reason, n in (acc.get(kind) or {}).items() if n]
    counted.sort(key=lambda entry: -entry[2])
    top = counted[:TOP]
    if not acc["lines"]:
        reasons = "the inputs hold no lines"
    else:
        reasons = ", ".join(f"{n} {kind} {reason}" for kind, reason, n in top) or "no reason counted"
    again = acc.get("recollect")
    shown = [(kind, reason) for kind, reason, _ in top if not (again and reason == "single_rollout")]
    fixes = list(dict.fromkeys(_fix(kind, reason, success) for kind, reason in shown))
    if again:
        fixes.insert(0, recollect_note(again))
    return f"{what} wrote nothing to {output}: {reasons}", "; ".join(fixes)


def recollect_note(again: dict[str, Any]) -> str:
    """What ``--recollect`` wrote and how to run it."""
    note = (
        f"{again['tasks']} unpaired prompts are in {again['path']} as task rows: "
        f"`rollforge collect {again['path']} --num-repeats 4 ...` gives them several rollouts each"
    )
    if again.get("from_environment"):
        note += f" ({again['from_environment']} start from their environment: collect those with --agent-url)"
    return note


def _fix(kind: str, reason: str, success: str | None) -> str:
    if kind == "rejected":
        return REJECTED_FIXES.get(reason, REJECTED_FIX)
    if kind == "skipped":
        return "the --format cannot hold these rows: choose another format (trl holds every row)"
    if reason in FIXES:
        return FIXES[reason].format(success=success or "reward >= 1")
    flags = {f.reason: f.option.flag for f in FILTERS if f.option is not None}
    return f"loosen {flags[reason]} ({reason})" if reason in flags else f"see the {reason} count above"
