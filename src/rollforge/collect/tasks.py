"""Task rows (a NeMo Gym dataset JSONL) and the planned (task, repeat) rows built from them."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from rollforge.errors import RollforgeError

TASK_INDEX = "_ng_task_index"
ROLLOUT_INDEX = "_ng_rollout_index"
Key = tuple[int, int]  # (_ng_task_index, _ng_rollout_index)


def load_tasks(path: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The first ``limit`` task rows of a JSONL file (blank lines skipped). Every row must be a JSON object
    with a ``responses_create_params`` object: a bad row stops the run before any request is sent."""
    rows: list[dict[str, Any]] = []
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below; the error path needs the name)
    except OSError as exc:
        raise RollforgeError(f"cannot read tasks file {path}: {exc.strerror}") from None
    with fh:
        for line_no, line in enumerate(fh, start=1):
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            rows.append(_parse(line, f"{path}:{line_no}"))
    if not rows:
        raise RollforgeError(f"no task rows in {path}")
    return rows


def _parse(line: bytes, where: str) -> dict[str, Any]:
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RollforgeError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(row, dict) or not isinstance(row.get("responses_create_params"), dict):
        raise RollforgeError(
            f"{where}: a task row must be a JSON object with a responses_create_params object",
            hint='e.g. {"responses_create_params": {"input": [{"role": "user", "content": "..."}]}, ...}',
        )
    return row


def require_field(tasks: list[dict[str, Any]], name: str, why: str) -> None:
    """Fail before any request when a task lacks a field the run needs."""
    missing = [i for i, row in enumerate(tasks) if row.get(name) is None]
    if missing:
        shown = ", ".join(str(i) for i in missing[:5])
        raise RollforgeError(f"{len(missing)} task rows have no {name} (task indices {shown}...); {why}")


def planned_row(task: dict[str, Any], key: Key, overrides: dict[str, Any]) -> dict[str, Any]:
    """The row sent for one (task, repeat): the task's fields, its indices, create-params overrides applied
    (as NeMo Gym applies its ``responses_create_params`` overrides)."""
    row = copy.deepcopy(task)
    row["responses_create_params"] = {**row["responses_create_params"], **overrides}
    row[TASK_INDEX], row[ROLLOUT_INDEX] = key
    return row
