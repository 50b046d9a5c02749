"""The Ray engine: the same steps as the local engine, scheduled by Ray Data across a cluster.

- read: a dataset of chunk numbers, ``map_batches`` runs ``process_chunk`` (the very function the local
  engine runs) on any node; rendered rows travel back through the object store and the driver writes them
  to its spill files at the offsets the worker recorded, so selection and writing are unchanged;
- pair: the candidates are a dataset grouped by ``prompt_id`` (``groupby().map_groups``), each group
  paired by ``rollforge.pairs.pair_group``, the same function the local engine calls.

Inputs may be local paths (every node must see them) or fsspec URLs. Connect to a running cluster with
``address`` (``--ray-address``); without one a local Ray instance is started.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections import Counter
from typing import Any

from rollforge.engine.index import RowIndex
from rollforge.engine.job import Job
from rollforge.engine.local import Scan, chunk_size, merge
from rollforge.engine.select import (
    DpoSelection,
    candidate_columns,
    first_appearance_order,
    prompt_count,
    scaled_pairing,
)
from rollforge.engine.worker import ChunkResult, process_chunk
from rollforge.errors import RollforgeError, missing_extra
from rollforge.io.lines import Chunk, plan_chunks
from rollforge.io.sources import STDIN, Discovery
from rollforge.pairs import Candidate, Pairing
from rollforge.progress import progress_bar


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise missing_extra("ray", "ray") from None
    return ray


def start(address: str | None = None, num_cpus: int | None = None) -> None:
    ray = _ray()
    if not ray.is_initialized():
        ray.init(
            address=address,
            num_cpus=None if address else num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
            logging_level=logging.ERROR,
        )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _read_chunks(job: Job, chunks: list[Chunk]) -> Any:
    """The map_batches function: process the batch's chunks in memory (process_chunk, as locally)."""

    def read(batch: dict[str, Any]) -> dict[str, list[bytes]]:
        results = [process_chunk(job, chunks[int(n)], int(n), None) for n in batch["number"]]
        return {"result": [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in results]}

    return read


def scan(
    discovery: Discovery, job: Job, spill_dir: str, workers: int | None = None, address: str | None = None
) -> Scan:
    """Read every input line once on the Ray cluster; the driver keeps the index and the spill files."""
    if any(source.path == STDIN for source in discovery.sources):  # a Ray worker has no stdin to read
        raise RollforgeError(
            "--engine ray cannot read standard input", hint="pass files, or use --engine local"
        )
    ray = _ray()
    start(address, workers)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    chunks = plan_chunks(discovery.sources, chunk_size(discovery.total_bytes, cpus))
    numbers = ray.data.from_items(
        [{"number": n} for n in range(len(chunks))], override_num_blocks=len(chunks)
    )
    results: list[ChunkResult] = []
    with progress_bar() as bar:
        task = bar.add_task("reading (ray)", total=len(chunks), unit="chunks")
        mapped = numbers.map_batches(_read_chunks(job, chunks), batch_size=1, num_cpus=1)
        for batch in mapped.iter_batches(batch_size=1, batch_format="numpy"):
            result: ChunkResult = pickle.loads(batch["result"][0])
            _spill_to_disk(result, spill_dir)
            results.append(result)
            bar.advance(task)
    results.sort(key=lambda r: r.number)
    return merge(results, chunks, job)


def _spill_to_disk(result: ChunkResult, spill_dir: str) -> None:
    """Write a remote chunk's rendered rows where the local engine would have (same names, same offsets)."""
    for name, data in result.in_memory.items():
        with open(os.path.join(spill_dir, name), "wb") as fh:
            fh.write(data)
    result.sft_paths = [os.path.join(spill_dir, name) for name in result.sft_paths]
    result.dpo_paths = [os.path.join(spill_dir, name) for name in result.dpo_paths]
    result.in_memory = {}


def _pair_groups(pairing: Pairing) -> Any:
    def pair(group: dict[str, Any]) -> dict[str, Any]:
        cands = [
            Candidate(int(r), float(w), bool(e), int(t), int(k), int(v))
            for r, w, e, t, k, v in zip(
                group["row"],
                group["reward"],
                group["eligible"],
                group["trajectory"],
                group["key"],
                group["env"],
                strict=True,
            )
        ]
        cands.sort(key=lambda c: c.row)  # the local engine sees each group in input order
        pairs, reason = pairing.pair(cands)
        return {
            "chosen": [c.row for c, _ in pairs] or [-1],
            "rejected": [r.row for _, r in pairs] or [-1],
            "reason": [reason or ""] * max(1, len(pairs)),
        }

    return pair


def select_dpo(index: RowIndex, job: Job) -> DpoSelection:
    """DPO pairs via Ray Data's groupby on prompt_id; same pairs, in the same order, as the local engine."""
    import numpy as np
    import pyarrow

    ray = _ray()
    columns = candidate_columns(index, job)
    result = DpoSelection(prompts=prompt_count(index))
    pairs: list[tuple[int, int]] = []
    result.unpaired["no_assistant_turn"] = result.prompts - np.unique(columns["prompt"]).size
    if len(columns["row"]):
        grouped = (
            ray.data.from_arrow(pyarrow.table(columns))
            .groupby("prompt")
            .map_groups(_pair_groups(scaled_pairing(index, job)), batch_format="numpy")
        )
        for batch in grouped.iter_batches(batch_format="numpy"):
            for chosen, rejected, reason in zip(
                batch["chosen"], batch["rejected"], batch["reason"], strict=True
            ):
                if reason:
                    result.unpaired[str(reason)] += 1
                elif chosen >= 0:
                    pairs.append((int(chosen), int(rejected)))
    result.pairs = first_appearance_order(pairs, index)
    result.unpaired += Counter()
    return result
