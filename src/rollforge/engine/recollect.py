"""The prompts DPO could not pair, as NeMo Gym task rows to collect again with more rollouts per task.

A prompt needs at least two rollouts with different rewards to make a pair; real corpora often hold one
rollout per task. Each unpaired prompt's first rollout line becomes a task row: the line minus what the
rollout produced (``response``, ``reward``) and NeMo Gym's per-run indices (collect assigns its own), so its
``responses_create_params`` and whatever task fields it carried (``expected_answer``, ``metadata``, ...)
are kept. ``rollforge collect FILE --num-repeats N`` reads it as it is.
"""

from __future__ import annotations

from typing import Any

import orjson

from rollforge.decode import LineDecoder
from rollforge.engine.index import RowIndex, id_int
from rollforge.engine.select import DpoSelection
from rollforge.errors import RollforgeError
from rollforge.io.lines import Chunk
from rollforge.io.read import read_chunk_raw
from rollforge.io.sources import STDIN, Discovery
from rollforge.io.target import inputs_of, open_output, prepare_output
from rollforge.rollout import Rollout

PRODUCED = ("response", "reward", "_ng_task_index", "_ng_rollout_index")


def unpaired_prompts(index: RowIndex, selection: DpoSelection) -> set[int]:
    paired = {index.prompt[chosen] for chosen, _ in selection.pairs}
    return {prompt for prompt in index.prompt if prompt not in paired}


def task_row(line: bytes) -> dict[str, Any]:
    row = orjson.loads(line)
    for name in PRODUCED:
        row.pop(name, None)
    return row


def check_recollect(discovery: Discovery, path: str) -> None:
    """Before any work: the inputs can be read again (not standard input), and ``path`` is none of them."""
    if any(source.path == STDIN for source in discovery.sources):
        raise RollforgeError("--recollect cannot re-read standard input", hint="give the rollouts as files")
    prepare_output(path, inputs_of(discovery))


def write_recollect(
    discovery: Discovery, index: RowIndex, selection: DpoSelection, path: str
) -> dict[str, Any]:
    """Write one task row per unpaired prompt to ``path`` (atomically, in input order). Returns
    ``{path, tasks, from_environment}``: the rows written, and how many have an empty ``input`` (an
    environment such as a game writes their first message: only a NeMo Gym agent, ``--agent-url``, can
    collect those). The inputs are read a second time (:func:`check_recollect` first)."""
    wanted = unpaired_prompts(index, selection)
    decoder = LineDecoder()
    written = environment = 0
    with open_output(path) as out:
        for source in discovery.sources:
            if not wanted:
                break
            for record, line in read_chunk_raw(Chunk(source), decoder):
                if isinstance(record, Rollout) and (prompt := id_int(record.prompt_id)) in wanted:
                    wanted.discard(prompt)
                    row = task_row(line)
                    out.write(orjson.dumps(row) + b"\n")
                    written += 1
                    environment += not (row.get("responses_create_params") or {}).get("input")
    return {"path": path, "tasks": written, "from_environment": environment}
