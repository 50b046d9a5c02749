"""A release's ``kto`` config (``kto: true`` in the recipe): TRL's unpaired preference rows, split by prompt
as the other configs are, with the label counts TRL's KTO weights are set from.

The label is the reward's verdict (success: desirable; a failure below ``undesirable_below``: undesirable),
so the recipe's reward filters (``success_only``, ``min_reward``, ``max_reward``), which shape the SFT set,
do not apply to it; every other quality filter does, to both labels. The rows are read in a second pass over
the inputs (the first one's filters keep successes only), so standard input cannot feed a KTO config.
"""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any

import orjson

from rollforge.build.recipe import Recipe
from rollforge.engine.choose import Engine
from rollforge.errors import RollforgeError
from rollforge.export.kto import Labels, balanced_weights
from rollforge.filters import FilterOptions, filter_options
from rollforge.io.sources import STDIN
from rollforge.pipeline import make_kto
from rollforge.progress import status
from rollforge.report.lengths import sequence_length
from rollforge.report.tokens import token_counter

KIND = "kto"
REWARD_FILTERS = {"success_only": False, "min_reward": None, "max_reward": None}


def kto_filters(recipe: Recipe) -> FilterOptions:
    return filter_options({**recipe.model_dump(), **REWARD_FILTERS})


def write_kto_config(recipe: Recipe, tmp: Path, splits: tuple[str, ...], split_of: Any) -> dict[str, Any]:
    """Write ``kto/<split>.jsonl``; return its accounting, with ``length`` (what TRL's max_length should be)
    and ``weights`` (desirable_weight, undesirable_weight balancing the train split's labels)."""
    if STDIN in recipe.inputs:
        raise RollforgeError(
            "kto: true reads the inputs a second time, and standard input can be read once",
            hint="write the rollouts to a file first, or set kto: false",
        )
    (tmp / KIND).mkdir()
    paths = {split: str(tmp / KIND / f"{split}.jsonl") for split in splits}
    filters = kto_filters(recipe)
    with status("writing the KTO rows (a second read of the inputs)"):
        acc = make_kto(
            recipe.inputs,
            paths,
            filters,
            Labels(recipe.undesirable_below),
            reasoning=recipe.reasoning,
            split_of=split_of,
            seed=recipe.seed,
            engine=Engine(recipe.engine, recipe.workers, recipe.ray_address),
            max_line_bytes=recipe.max_line_bytes,
        )
    train = acc["labels"].get("train", {})
    weights = balanced_weights(train.get("desirable", 0), train.get("undesirable", 0))
    keep = ("desirable", "undesirable", "labels", "filtered", "export", "label_rule")
    return {
        "written": acc["written"],
        **acc["splits"],
        **{key: acc[key] for key in keep},
        "weights": dict(zip(("desirable", "undesirable"), weights, strict=True)),
        "length": _length(list(paths.values()), filters),
        "ignored_filters": sorted(k for k in REWARD_FILTERS if recipe.model_dump().get(k)),
    }


def _length(paths: list[str], filters: FilterOptions) -> dict[str, Any] | None:
    """The sequence length of the KTO rows (prompt and completion together), counted as the report counts
    SFT rows (real tokens with the recipe's tokenizer, else the labelled estimate)."""
    counter = token_counter(filters.tokenizer)
    lengths = array("q")
    for path in paths:
        with open(path, "rb") as fh:
            for line in fh:
                row = orjson.loads(line)
                lengths.append(
                    counter.count([*row["prompt"], *row["completion"]], orjson.loads(row["tools"]))
                )
    return sequence_length(lengths, filters.max_tokens)
