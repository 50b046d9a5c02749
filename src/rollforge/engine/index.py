"""The compact per-rollout index a run keeps in memory: a few numbers per rollout, never the rollout.

Columns are typed arrays (about 50 bytes a rollout); ids are the 64-bit values of their hex strings.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

NO_SPILL = -1


@dataclass
class Placement:
    """Where each row's rendered bytes for one output format sit in its chunk's spill file."""

    offset: array = field(default_factory=lambda: array("q"))
    length: array = field(default_factory=lambda: array("i"))  # a rendered row is under 2 GiB
    notes: dict[int, dict[str, int]] = field(
        default_factory=dict
    )  # row -> export notes (trimmed messages...)

    def add(self, at: tuple[int, int]) -> None:
        self.offset.append(at[0])
        self.length.append(at[1])

    def extend(self, other: Placement, base: int) -> None:
        self.offset.extend(other.offset)
        self.length.extend(other.length)
        self.notes.update({base + row: notes for row, notes in other.notes.items()})


@dataclass
class RowIndex:
    prompt: array = field(default_factory=lambda: array("Q"))
    rollout: array = field(default_factory=lambda: array("Q"))
    reward: array = field(default_factory=lambda: array("d"))
    reason: array = field(default_factory=lambda: array("b"))  # per-rollout filter code, 0 = kept
    success: array = field(default_factory=lambda: array("b"))
    trajectory: array = field(default_factory=lambda: array("Q"))  # only with DPO outputs
    key: array = field(default_factory=lambda: array("Q"))
    chunk: array = field(default_factory=lambda: array("i"))
    env: array = field(default_factory=lambda: array("Q"))  # the environment's code (environments.env_code)
    env_names: dict[int, str] = field(default_factory=dict)  # code -> environment name
    # Per filter over every rollout that asks for one (by its reason): what each rollout it may drop left
    # (rollforge.filtering.Filter.column), an array where the filter names a typecode, else a list.
    columns: dict[str, Any] = field(default_factory=dict)
    sft: list[Placement] = field(default_factory=list)  # one per SFT output format
    dpo: list[Placement] = field(default_factory=list)  # one per DPO output format

    def __len__(self) -> int:
        return len(self.reward)

    def column(self, reason: str) -> Any:
        if reason not in self.columns:  # no rollout was indexed (an empty input): nothing to judge
            assert not len(self), f"no column {reason!r} for {len(self)} rows"
            return []
        return self.columns[reason]

    def extend(self, other: RowIndex) -> None:
        base = len(self)
        for name in self.__dataclass_fields__:
            if name in ("sft", "dpo"):
                mine, theirs = getattr(self, name), getattr(other, name)
                mine.extend(Placement() for _ in range(len(theirs) - len(mine)))
                for placement, more in zip(mine, theirs, strict=True):
                    placement.extend(more, base)
            elif name == "env_names":
                self.env_names.update(other.env_names)
            elif name == "columns":
                for reason, values in other.columns.items():
                    self.columns.setdefault(reason, values[:0]).extend(values)
            else:
                getattr(self, name).extend(getattr(other, name))


def id_int(hex_id: str) -> int:
    return int(hex_id, 16)


def id_hex(value: int) -> str:
    return f"{value:016x}"
