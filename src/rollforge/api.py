"""rollforge's Python API: one function per command, taking the command's options as keyword arguments
(the flags with underscores) and returning what the command prints with ``--json``.

    import rollforge

    summary = rollforge.inspect("rollouts/")
    acc = rollforge.sft("rollouts/", "sft.jsonl", success_only=True, require_tool_use=True)
    acc = rollforge.dpo("rollouts/", "dpo.jsonl", pairing="all", min_margin=0.3)
    acc = rollforge.kto("rollouts/", "kto.jsonl", undesirable_below=0.5)
    acc = rollforge.sample("rollouts/", "review.jsonl", strata="0.5:10,0.8:20,inf:20")
    release = rollforge.build("rollforge.yaml", min_reward=0.8)  # or build(inputs=[...], output="releases")
    data = rollforge.report("releases/v1", "report.html")
    result = rollforge.compare("before.jsonl", "after.jsonl")

``paths`` is a path, a directory, a glob, an fsspec URL or ``-``, or a list of them. Every quality filter is
a keyword (``min_reward=0.8``, ``where="reward > 0.5"``; the list is ``rollforge.filters.OPTIONS``); an
unknown one is an error. The heavy modules are imported when a function runs, so ``import rollforge`` is
instant. Errors users can fix are :class:`rollforge.errors.RollforgeError`, one line naming the fix.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rollforge.limits import DEFAULT_MAX_LINE_BYTES

if TYPE_CHECKING:
    from rollforge.build.release import Release
    from rollforge.engine.choose import Engine
    from rollforge.report.data import ReportData

Path = str | os.PathLike[str]
Paths = Path | Sequence[Path]


def inspect(
    paths: Paths,
    *,
    workers: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    success_threshold: float = 1.0,
    success_field: str | None = None,
    env_field: str | None = None,
    environments: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What is in rollouts files: lines, rollouts, every reject with file, line and reason, prompts,
    rollouts per prompt, reward statistics, item and reasoning shapes, tool use, warnings
    (``lines == rollouts + len(rejected)``), and ``environments``: each one's rollouts, rejects, rewards on
    its own scale and success rate under the success policy given (``environments``: NAME ->
    ``{success_threshold: T or "max"}``, as in a recipe)."""
    from rollforge.filters import FilterOptions
    from rollforge.pipeline import take_inventory

    policy = FilterOptions(
        success_threshold=success_threshold,
        success_field=success_field,
        env_field=env_field,
        environments=environments,
    )
    return take_inventory(_paths(paths), workers, max_line_bytes, policy)


def sft(
    paths: Paths,
    output: Path,
    *,
    format: str = "trl",
    reasoning: str | None = None,
    seed: int = 0,
    workers: int | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    allow_empty: bool = False,
    **filters: Any,
) -> dict[str, Any]:
    """Write one SFT row (a chat conversation, prompt included) per rollout that passes the quality filters
    to ``output``, in ``format`` (trl, openai, nemo-rl, sharegpt). Returns the accounting:
    ``lines == written + sum(filtered) + sum(rejected)``, and ``success``, the definition in force. No row
    written raises :class:`RollforgeError` naming the top reasons, unless ``allow_empty``."""
    from rollforge.filters import FilterOptions
    from rollforge.pipeline import SftOptions, make_sft

    return make_sft(
        _paths(paths),
        os.fspath(output),
        FilterOptions(**filters),
        SftOptions(format, reasoning),
        seed=seed,
        engine=_engine(engine, workers, ray_address),
        max_line_bytes=max_line_bytes,
        allow_empty=allow_empty,
    )


def kto(
    paths: Paths,
    output: Path,
    *,
    undesirable_below: float | None = None,
    reasoning: str | None = None,
    seed: int = 0,
    workers: int | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    allow_empty: bool = False,
    **filters: Any,
) -> dict[str, Any]:
    """Write TRL's unpaired preference (KTO) rows to ``output``: per rollout that passes the quality filters,
    ``prompt`` and ``completion`` (message lists) and ``label``: True for a success (``success_threshold``
    or ``success_field``), False for a failure with reward below ``undesirable_below`` (None: every
    failure). A kept rollout with neither label is filtered as ``between_labels``. Unlike ``sft``, failures
    are kept by default (they are the undesirable rows): ``success_only=True`` leaves none. Returns the
    accounting (``lines == written + sum(filtered) + sum(rejected)``) with ``desirable`` and ``undesirable``;
    no row raises :class:`RollforgeError` naming the top reasons, unless ``allow_empty``."""
    from rollforge.export.kto import Labels
    from rollforge.filters import FilterOptions
    from rollforge.pipeline import make_kto

    if filters.get("success_only") is None:
        filters["success_only"] = False
    return make_kto(
        _paths(paths),
        {"all": os.fspath(output)},
        FilterOptions(**filters),
        Labels(undesirable_below),
        reasoning=reasoning,
        seed=seed,
        engine=_engine(engine, workers, ray_address),
        max_line_bytes=max_line_bytes,
        allow_empty=allow_empty,
    )


def dpo(
    paths: Paths,
    output: Path,
    *,
    format: str = "trl",
    reasoning: str | None = None,
    pairing: str = "best-worst",
    min_margin: float = 0.1,
    max_pairs_per_prompt: int | None = None,
    split_at_divergence: bool = False,
    margin_scale: str = "absolute",
    seed: int = 0,
    workers: int | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    memory_budget: float | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    allow_empty: bool = False,
    recollect: Path | None = None,
    **filters: Any,
) -> dict[str, Any]:
    """Write DPO preference pairs made inside each prompt's group of rollouts (best-worst, best-random or
    all; over ``min_margin``; never tied; the chosen side passes the quality filters) to ``output``.
    ``margin_scale="range"`` makes ``min_margin`` a fraction of each environment's observed reward range.
    Returns the accounting, with ``prompts``, ``pairs`` and ``unpaired`` (reason -> prompts). No pair raises
    :class:`RollforgeError` with the fix, unless ``allow_empty``; ``recollect`` (a path) gets the unpaired
    prompts as NeMo Gym task rows, to collect again with more rollouts per task."""
    from rollforge.filters import FilterOptions
    from rollforge.pipeline import DpoOptions, make_dpo

    options = DpoOptions(
        format, reasoning, pairing, min_margin, max_pairs_per_prompt, split_at_divergence, margin_scale
    )
    return make_dpo(
        _paths(paths),
        os.fspath(output),
        FilterOptions(**filters),
        options,
        seed=seed,
        engine=_engine(engine, workers, ray_address, memory_budget),
        max_line_bytes=max_line_bytes,
        allow_empty=allow_empty,
        recollect=None if recollect is None else os.fspath(recollect),
    )


def sample(
    paths: Paths,
    output: Path,
    *,
    strata: str | None = None,
    by_env: bool = False,
    env_field: str | None = None,
    seed: int = 0,
    workers: int | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """Write a seeded review sample stratified by reward (``strata``: ``UPPER:COUNT,...``, default the
    tutorial's ``0.5:10,0.8:20,inf:20``) as the original rollout lines. Returns the accounting with
    ``strata`` (wanted and written per stratum). ``by_env``: each stratum is drawn within each environment
    (``rollforge.environments``; ``env_field`` names it), so a small environment is not drowned out."""
    from rollforge.engine.job import parse_strata
    from rollforge.pipeline import make_sample

    return make_sample(
        _paths(paths),
        os.fspath(output),
        parse_strata(strata),
        by_env=by_env,
        env_field=env_field,
        seed=seed,
        engine=_engine(engine, workers, ray_address),
        max_line_bytes=max_line_bytes,
        allow_empty=allow_empty,
    )


def build(recipe: Path | None = None, /, **keys: Any) -> Release:
    """Build a versioned release (SFT and DPO splits, review sample, report, manifest, dataset card, trainer
    configs) from a recipe file, or from recipe keys (``inputs=[...], output="releases"``); keys given
    with a file override its keys. Returns the release: its path, manifest and outputs."""
    from rollforge.build.recipe import load_recipe, make_recipe
    from rollforge.build.release import build as build_release

    made = load_recipe(os.fspath(recipe), keys) if recipe is not None else make_recipe(keys, source="options")
    return build_release(made)


def report(
    paths: Paths,
    output: Path | None = "report.html",
    *,
    tokenizer: str | None = None,
    max_tokens: int | None = None,
    workers: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ReportData:
    """The pre-training validation report of release directories, released SFT/DPO files or rollouts,
    written as one HTML file to ``output`` (None: not written; ``-``: standard output). ``.summary()`` is
    ``rollforge report --json``; ``.warnings`` lists the checks that warn."""
    from rollforge.io.target import named_files, prepare_output
    from rollforge.report import report_paths, write_report

    names = _paths(paths)
    if output is not None:  # never over an input; dead runs' leftovers swept from where it writes
        prepare_output(os.fspath(output), named_files(names))
    data = report_paths(
        names, tokenizer=tokenizer, max_tokens=max_tokens, workers=workers, max_line_bytes=max_line_bytes
    )
    if output is not None:
        write_report(data, os.fspath(output), workers=workers)
    return data


def compare(
    baseline: Paths,
    candidate: Paths,
    *,
    success_threshold: float = 1.0,
    success_field: str | None = None,
    by: str | None = None,
    k: Sequence[int] = (1, 4),
    bootstrap: int = 10_000,
    permutations: int = 10_000,
    seed: int = 0,
    allow_different_tasks: bool = False,
) -> dict[str, Any]:
    """Compare two runs of the same tasks: per side mean reward, success rate and pass@k; over the prompts
    on both sides a paired bootstrap 95% CI of the mean reward difference and a permutation p-value; the
    same per task type (or per ``by`` field). Each side's model and the release it was trained on come
    from the collect records and lineage (``rollforge.lineage``); runs over different task sets are refused
    unless ``allow_different_tasks``, and a side whose model was trained on an evaluated prompt is warned of."""
    from rollforge.compare import CompareOptions
    from rollforge.compare import compare as compare_runs
    from rollforge.success import Success

    options = CompareOptions(
        success=Success(success_threshold, success_field),
        ks=tuple(k),
        by=by,
        n_boot=bootstrap,
        n_perm=permutations,
        seed=seed,
        allow_different_tasks=allow_different_tasks,
    )
    return compare_runs(_paths(baseline), _paths(candidate), options)


def iterate(recipe: Path | None = None, /, **keys: Any) -> dict[str, Any]:
    """Run (or resume) the improvement loop (collect -> build -> train -> evaluate -> compare, each round) from
    an iterate recipe file, or from recipe keys (``base_model=..., train_tasks=..., heldout_tasks=...,
    output=...``); keys given with a file override its keys. Returns what ``OUTPUT/iterate.json`` holds."""
    from rollforge.loop import iterate as run_loop
    from rollforge.loop import load_iterate_recipe, make_iterate_recipe

    if recipe is not None:
        return run_loop(load_iterate_recipe(os.fspath(recipe), keys))
    return run_loop(make_iterate_recipe(keys, "options"))


def _paths(paths: Paths) -> list[str]:
    if isinstance(paths, str | os.PathLike):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


def _engine(
    name: str, workers: int | None, ray_address: str | None, memory_budget: float | None = None
) -> Engine:
    from rollforge.engine.choose import ENGINES, Engine
    from rollforge.errors import RollforgeError

    if name not in ENGINES:
        raise RollforgeError(f"unknown engine {name!r}", hint=f"choose one of {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise RollforgeError("--workers must be at least 1")
    return Engine(name, workers, ray_address, memory_budget)
