"""The steps of one round of ``rollforge iterate``, each a function from its inputs to a small JSON record.

A step either finishes (its record is then written, atomically, as the round's marker for it) or leaves
something its next run knows how to take over: collect keeps the rows already written (``--resume``), a
build that died left no version directory, a training run that died is started again from its base model.
"""

from __future__ import annotations

import contextlib
import random
import shutil
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import yaml

from rollforge.build.recipe import make_recipe
from rollforge.build.release import build
from rollforge.collect import CollectOptions, collect
from rollforge.compare import CompareOptions
from rollforge.compare import compare as compare_runs
from rollforge.compare.stats import paired_bootstrap_ci
from rollforge.errors import RollforgeError
from rollforge.io.atomic import atomic_file
from rollforge.loop.recipe import IterateRecipe
from rollforge.loop.serve import transformers_serve

# What a tiny model's training run needs beside the recipe's own settings: no checkpoints (retraining takes
# seconds, and a run that died is started again), a loss logged every few steps.
TRAIN_DEFAULTS: dict[str, Any] = {"save_strategy": "no", "logging_steps": 5}


@contextlib.contextmanager
def endpoint(recipe: IterateRecipe, model: Path, log_path: Path) -> Iterator[dict[str, Any]]:
    """The CollectOptions keys that reach ``model``: in process, through a server we start, or a given URL."""
    settings = recipe.collect
    if settings.mode == "local":
        yield {"local_model": str(model), "batch_size": settings.batch_size}
    elif settings.mode == "serve":
        with transformers_serve(model, log_path) as url:
            yield {"base_url": url, "model": str(model), "concurrency": settings.concurrency}
    else:
        yield {"base_url": settings.base_url, "model": str(model), "concurrency": settings.concurrency}


def collect_rollouts(
    recipe: IterateRecipe, model: Path, tasks: str, samples: int, out: Path, seed: int
) -> dict[str, Any]:
    """``samples`` rollouts of ``model`` on each task into ``out``, keeping the rows a killed run wrote."""
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = recipe.collect
    with endpoint(recipe, model, out.with_suffix(".serve.log")) as where:
        options = CollectOptions(
            tasks=tasks,
            output=str(out),
            verifier=settings.verifier,
            num_repeats=samples,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            resume=True,
            seed=seed,
            **where,
        )
        summary = collect(options).to_json()
    if summary["failed"]:
        raise RollforgeError(
            f"{summary['failed']} rollouts of {out} failed ({summary['failures_file']})",
            hint="run iterate again: it resumes and retries them",
        )
    return {"file": str(out), "rows": summary["finished"], "mean_reward": summary["finished_mean_reward"]}


def shuffle_rewards(src: Path, dst: Path, seed: int) -> None:
    """The control arm's input: ``src`` with its rewards (and verdicts) permuted across rollouts, so the
    filter keeps as many rollouts as it would, picked regardless of how good they are."""
    rows = [orjson.loads(line) for line in src.read_bytes().splitlines() if line.strip()]
    verdicts = [(row.get("reward"), row.get("is_correct")) for row in rows]
    random.Random(seed).shuffle(verdicts)
    with atomic_file(dst) as fh:
        for row, (reward, correct) in zip(rows, verdicts, strict=True):
            row["reward"] = reward
            if "is_correct" in row:
                row["is_correct"] = correct
            fh.write(orjson.dumps(row) + b"\n")


def build_release(recipe: IterateRecipe, rollouts: Path, version: str) -> dict[str, Any]:
    """``releases/<version>`` from ``rollouts``: success-only SFT rows, or best-worst DPO pairs."""
    root = recipe.root / "releases"
    release = root / version
    if not (release / "manifest.json").is_file():  # a finished build is never redone
        keys = {
            "success_only": True,
            "val_fraction": 0.0,
            "seed": recipe.seed,
            "extra_formats": [],
            "dpo": recipe.method == "dpo",
            "pairing": "best-worst",
            "allow_empty": True,  # a round with nothing to train on is refused below, in the loop's words
            **recipe.build,
            "exclude_tasks": str(recipe.heldout_tasks),  # decontamination: no held-out prompt is trained on
            "inputs": [str(rollouts)],
            "output": str(root),
            "version": version,
        }
        build(make_recipe(keys, source="iterate"))
    data = release / recipe.method / "train.jsonl"
    rows = sum(1 for line in data.open("rb") if line.strip()) if data.is_file() else 0
    if rows == 0:
        raise RollforgeError(
            f"release {release} has no {recipe.method.upper()} rows to train on",
            hint="the model succeeded on no training task: more samples, or a better base",
        )
    return {"release": str(release), "rows": rows}


def train_model(
    recipe: IterateRecipe, base: Path, release: Path, out: Path, config_path: Path
) -> dict[str, Any]:
    """Train ``base`` on ``release`` into ``out``; a directory a killed run left is cleared first."""
    from rollforge.train import TrainOptions, train_dpo, train_sft

    shutil.rmtree(out, ignore_errors=True)
    settings = recipe.train
    config_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(config_path) as fh:
        fh.write(yaml.safe_dump({**TRAIN_DEFAULTS, **settings.config}).encode())
    options = TrainOptions(
        model=str(base),
        data=release,
        output_dir=out,
        config_file=config_path,
        max_steps=settings.max_steps,
        epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        max_length=settings.max_length,
        seed=recipe.seed,
    )
    metrics = (train_dpo if recipe.method == "dpo" else train_sft)(options)
    return {
        "model": str(out),
        "method": recipe.method,
        "train_rows": metrics["train_rows"],
        "steps": metrics["global_step"],
        "train_loss": metrics["train_loss"],
        "train_runtime": metrics["train_runtime"],
    }


def mean_with_ci(rollouts: Path, seed: int) -> dict[str, Any]:
    """Mean reward over the tasks (each task's mean over its samples), with a bootstrap 95% CI."""
    import numpy as np

    by_task: dict[Any, list[float]] = defaultdict(list)
    for line in rollouts.read_bytes().splitlines():
        if line.strip():
            row = orjson.loads(line)
            by_task[row["_ng_task_index"]].append(float(row["reward"]))
    means = np.array([sum(r) / len(r) for r in by_task.values()])
    low, high = paired_bootstrap_ci(means, 10_000, seed)
    return {"mean_reward": float(means.mean()), "ci95": [low, high], "tasks": len(means)}


def compare_files(baseline: Path, candidate: Path, seed: int) -> dict[str, Any]:
    """The paired comparison of two held-out runs (the full ``rollforge compare --json`` result)."""
    return compare_runs([str(baseline)], [str(candidate)], CompareOptions(seed=seed))
