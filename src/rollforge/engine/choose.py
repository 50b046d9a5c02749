"""Picking the engine: the local process pool, or Ray. Both return the same Scan and selections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rollforge.engine import local
from rollforge.engine.buckets import needs_buckets, select_dpo_bucketed
from rollforge.engine.index import RowIndex
from rollforge.engine.job import Job
from rollforge.engine.local import Scan
from rollforge.engine.select import DpoSelection, select_dpo
from rollforge.io.sources import Discovery

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Engine:
    name: str = "local"
    workers: int | None = None  # processes (local) or CPUs for a local Ray instance
    ray_address: str | None = None  # an existing Ray cluster ("auto", "ray://host:10001")
    memory_budget: float | None = None  # MB for DPO grouping state; over it, grouping spills to disk

    def scan(
        self, discovery: Discovery, job: Job, spill_dir: str, started: Callable[[], object] | None = None
    ) -> Scan:
        if self.name == "ray":
            from rollforge.engine import ray_engine

            if started:
                started()
            return ray_engine.scan(discovery, job, spill_dir, self.workers, self.ray_address)
        return local.scan(discovery, job, spill_dir, self.workers, started)

    def select_dpo(self, index: RowIndex, job: Job, spill_dir: str) -> DpoSelection:
        """DPO pairs as ``job.pairing`` says, on Ray, or in buckets on disk over the memory budget."""
        if self.name == "ray":
            from rollforge.engine import ray_engine

            return ray_engine.select_dpo(index, job)
        if needs_buckets(index, self.memory_budget):
            assert self.memory_budget is not None
            return select_dpo_bucketed(index, job, self.memory_budget, spill_dir)
        return select_dpo(index, job)
