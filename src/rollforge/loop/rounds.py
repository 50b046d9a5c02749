"""``rollforge iterate``: rounds of collect -> build -> train -> evaluate -> compare, resumable at any step.

Round 0 evaluates the base model on the held-out tasks. Round N (1..rounds):

1. ``collect``: the current model (the base, then ``models/agent_v{N-1}``) on the training tasks, K samples
   each -> ``rounds/N/train_rollouts.jsonl``;
2. ``build``: ``releases/vN`` from them (success-only SFT rows, or best-worst DPO pairs); the control arm
   builds from a copy whose rewards are shuffled across rollouts;
3. ``train``: ``models/agent_vN`` from the current model on ``releases/vN``;
4. ``eval``: ``models/agent_vN`` on the held-out tasks -> ``rounds/N/heldout.jsonl``;
5. ``compare``: round N's held-out run against round N-1's (paired over tasks).

Each finished step writes ``rounds/N/<step>.done.json`` atomically (what it made, its figures, its wall time),
and a later run skips every step that has one: killed at any point (``kill -9`` included), the loop is run
again with the same command and carries on where it stopped, without redoing finished steps or losing a row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from rollforge.errors import RollforgeError
from rollforge.io.atomic import atomic_file
from rollforge.loop import steps
from rollforge.loop.recipe import IterateRecipe
from rollforge.loop.table import markdown_table
from rollforge.train.config import small_model

STEPS = ("collect", "build", "train", "eval", "compare")
RESULT_FILE = "iterate.json"
TABLE_FILE = "iterate.md"
RECIPE_FILE = "iterate_recipe.json"

Report = Callable[[str], None]


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        fh.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


def run_step(
    directory: Path, name: str, work: Callable[[], dict[str, Any]], report: Report
) -> dict[str, Any]:
    """``work()``'s record, from its marker when an earlier run finished the step, else by running it."""
    marker = directory / f"{name}.done.json"
    if marker.is_file():
        report(f"{directory.name}/{name}: finished earlier, kept")
        return dict(orjson.loads(marker.read_bytes()))
    report(f"{directory.name}/{name}: running")
    started = time.monotonic()
    record = work()
    record |= {"wall_s": round(time.monotonic() - started, 2), "pid": os.getpid()}
    _write_json(marker, record)
    report(f"{directory.name}/{name}: done in {record['wall_s']:.1f} s")
    return record


def _check_same_recipe(recipe: IterateRecipe) -> None:
    """A resumed run must be the same loop: only ``rounds`` may change (to add rounds)."""
    path = recipe.root / RECIPE_FILE
    mine = recipe.model_dump(mode="json", exclude={"rounds"})
    if path.is_file():
        theirs = orjson.loads(path.read_bytes())
        if theirs != mine:
            changed = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            raise RollforgeError(
                f"{recipe.root} holds a loop run with another recipe (differs in: {', '.join(changed)})",
                hint="use a new output directory, or the recipe of that run to resume it",
            )
    else:
        _write_json(path, mine)


def _evaluate(recipe: IterateRecipe, model: Path, out: Path, seed: int) -> dict[str, Any]:
    record = steps.collect_rollouts(recipe, model, recipe.heldout_tasks, recipe.eval_samples, out, seed)
    return record | {"model": str(model), **steps.mean_with_ci(out, recipe.seed)}


def _compare(recipe: IterateRecipe, baseline: Path, candidate: Path) -> dict[str, Any]:
    result = steps.compare_files(baseline, candidate, recipe.seed)
    return {"baseline": str(baseline), "candidate": str(candidate), "n_paired": result["n_paired"],
            "delta": result["delta"], "verdict": result["verdict"]}  # fmt: skip


def _round(recipe: IterateRecipe, n: int, model: Path, report: Report) -> dict[str, Any]:
    root, here = recipe.root, recipe.root / "rounds" / str(n)
    seed = recipe.seed + 1000 * n
    records: dict[str, Any] = {"round": n}
    train_rollouts = here / "train_rollouts.jsonl"
    records["collect"] = run_step(here, "collect", lambda: steps.collect_rollouts(
        recipe, model, recipe.train_tasks, recipe.samples, train_rollouts, seed), report)  # fmt: skip

    def build() -> dict[str, Any]:
        source = train_rollouts
        if recipe.control:  # the same rollouts, their rewards shuffled: filtering picks regardless of reward
            source = here / "train_rollouts_shuffled.jsonl"
            steps.shuffle_rewards(train_rollouts, source, seed)
        return steps.build_release(recipe, source, f"v{n}") | {"control": recipe.control}

    records["build"] = run_step(here, "build", build, report)
    release, trained = Path(records["build"]["release"]), root / "models" / f"agent_v{n}"
    records["train"] = run_step(here, "train", lambda: steps.train_model(
        recipe, model, release, trained, here / "train_config.yaml"), report)  # fmt: skip
    heldout = here / "heldout.jsonl"
    records["eval"] = run_step(here, "eval", lambda: _evaluate(recipe, trained, heldout, seed + 1), report)
    previous = root / "rounds" / str(n - 1) / "heldout.jsonl"
    records["compare"] = run_step(here, "compare", lambda: _compare(recipe, previous, heldout), report)
    return records


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def iterate(recipe: IterateRecipe, report: Report | None = None) -> dict[str, Any]:
    """Run (or resume) the loop; returns what ``iterate.json`` holds: each round's records and the total."""
    say = report or (lambda _: None)
    base = Path(recipe.base_model)
    if not base.is_dir():
        raise RollforgeError(f"base_model {base} is not a model directory")
    recipe.root.mkdir(parents=True, exist_ok=True)
    _check_same_recipe(recipe)
    _set_threads(recipe.threads or (1 if small_model(str(base)) else None))
    zero = recipe.root / "rounds" / "0"
    base_eval = run_step(
        zero, "eval", lambda: _evaluate(recipe, base, zero / "heldout.jsonl", recipe.seed), say
    )
    rounds: list[dict[str, Any]] = [{"round": 0, "eval": base_eval}]
    model = base
    for n in range(1, recipe.rounds + 1):
        rounds.append(_round(recipe, n, model, say))
        model = Path(rounds[-1]["train"]["model"])
    last = recipe.root / "rounds" / str(recipe.rounds) / "heldout.jsonl"
    total = run_step(recipe.root / "rounds" / str(recipe.rounds), "total",
                     lambda: _compare(recipe, zero / "heldout.jsonl", last), say)  # fmt: skip
    result = {"recipe": recipe.model_dump(mode="json"), "rounds": rounds, "total": total}
    _write_json(recipe.root / RESULT_FILE, result)
    with atomic_file(recipe.root / TABLE_FILE) as fh:
        fh.write(markdown_table(result).encode())
    return result
