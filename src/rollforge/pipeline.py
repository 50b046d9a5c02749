"""The library functions behind ``rollforge inspect``, ``sft``, ``dpo`` and ``sample``: read once, select, write,
account.

Every function returns its accounting as plain JSON: for ``make_sft``
``lines == written + sum(filtered) + sum(rejected)``; ``make_dpo`` adds ``prompts``, ``pairs`` and
``unpaired`` (reason -> prompts).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollforge.decontam import load_eval_tasks
from rollforge.empty import refuse_empty
from rollforge.engine.choose import Engine
from rollforge.engine.index import id_hex
from rollforge.engine.job import DEFAULT_STRATA, Job, Output, Stratum, validation_split
from rollforge.engine.local import Scan, scan
from rollforge.engine.mixing import environment_accounting, margin_accounting, mix_pairs
from rollforge.engine.observed import resolve_max
from rollforge.engine.recollect import check_recollect, write_recollect
from rollforge.engine.select import DpoSelection, ineligible, select_sft
from rollforge.engine.write import Written, write_dpo, write_kto, write_sft
from rollforge.export.formats import KTO, TRL, Format, format_named
from rollforge.export.kto import Labels
from rollforge.filters import FilterOptions
from rollforge.io.atomic import atomic_file
from rollforge.io.kinds import discover_rollouts
from rollforge.io.leftovers import tag
from rollforge.io.read import count_lines, iter_records
from rollforge.io.sources import STDIN, Discovery
from rollforge.io.target import inputs_of, open_output, prepare_output, work_directory, written_through
from rollforge.limits import DEFAULT_MAX_LINE_BYTES
from rollforge.pairs import Pairing
from rollforge.progress import track
from rollforge.reasons import REASON_CODES
from rollforge.stats import Inventory


@dataclass(frozen=True)
class SftOptions:
    format: str = TRL.name
    reasoning: str | None = None  # None: the format's default (rollforge.export.formats)


@dataclass(frozen=True)
class DpoOptions:
    format: str = TRL.name
    reasoning: str | None = None
    pairing: str = "best-worst"
    min_margin: float = 0.1
    max_pairs_per_prompt: int | None = None
    split_at_divergence: bool = False
    margin_scale: str = "absolute"  # or range: min_margin is a fraction of each environment's reward range


@contextlib.contextmanager
def spill_directory(near: str | Path) -> Iterator[str]:
    """Scratch space for converted records, beside the output (same disk), removed afterwards; its name
    carries this host and pid, so a later run can sweep it if this one is killed."""
    parent = Path(work_directory(str(near)))
    parent.mkdir(parents=True, exist_ok=True)
    path = tempfile.mkdtemp(prefix=".rollforge-spill" + tag(), dir=parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def discover_for(
    paths: list[str],
    output: str,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    filters: FilterOptions | None = None,
) -> Discovery:
    """The inputs of a run writing ``output``; refused before anything is read if the output is one of
    them, or a filter reads a field no rollout has, and dead runs' leftovers swept from where it writes."""
    fields = filters.fields_by_flag if filters is not None else None
    discovery = discover_rollouts(paths, max_line_bytes, fields)
    prepare_output(output, inputs_of(discovery))
    return discovery


def read_accounting(result: Scan, discovery: Discovery | None = None) -> dict[str, Any]:
    inv = result.inventory
    acc: dict[str, Any] = {
        "lines": inv.lines,
        "rollouts": inv.rollouts,
        "rejected": dict(Counter(r.reason for r in inv.rejected)),
    }
    if discovery is not None and discovery.same_file:
        acc["same_file"] = discovery.same_file  # inputs named twice, read once
    return acc


def contaminated_rows(result: Scan) -> list[tuple[str, str]]:
    """(prompt_id, rollout_id) of every rollout dropped as ``contaminated``, in input order."""
    code, index = REASON_CODES["contaminated"], result.index
    return [
        (id_hex(index.prompt[row]), id_hex(index.rollout[row]))
        for row, reason in enumerate(index.reason)
        if reason == code
    ]


def contamination(result: Scan, filters: FilterOptions) -> dict[str, Any] | None:
    """What ``--exclude-tasks`` kept out: the evaluation set, the rollouts and prompts dropped as
    ``contaminated``, and each such prompt with how it matched (its prompt_id, or an n-gram of its text)."""
    if filters.exclude_tasks is None:
        return None
    tasks = load_eval_tasks(filters.exclude_tasks, filters.contamination_ngram)
    per_prompt = Counter(pid for pid, _ in contaminated_rows(result))
    prompts = [
        {"prompt_id": pid, "match": "prompt_id" if pid in tasks.prompt_ids else "ngram", "rollouts": n}
        for pid, n in sorted(per_prompt.items())
    ]
    by_match: Counter[str] = Counter()
    for pid, n in per_prompt.items():
        by_match["prompt_id" if pid in tasks.prompt_ids else "ngram"] += n
    return {
        "eval_tasks": tasks.summary(),
        "rollouts": sum(per_prompt.values()),
        "prompts": len(prompts),
        "rollouts_by_match": dict(sorted(by_match.items())),
        "contaminated_prompts": prompts,
    }


def sft_accounting(
    result: Scan, filtered: Counter, written: Written, discovery: Discovery | None = None
) -> dict:
    return {
        **read_accounting(result, discovery),
        "written": written.total,
        "splits": dict(written.rows),
        "filtered": dict(sorted(filtered.items())),
        "export": dict(written.notes),
    }


def make_sft(
    paths: list[str],
    output: str,
    filters: FilterOptions | None = None,
    options: SftOptions | None = None,
    *,
    seed: int = 0,
    workers: int | None = None,
    engine: Engine | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """Write one SFT row per kept rollout to ``output``; return the accounting. No row is an error
    (nothing is left at ``output``) unless ``allow_empty``."""
    opts = options or SftOptions()
    fmt = format_named(opts.format)
    discovery = discover_for(paths, output, max_line_bytes, filters or FilterOptions())
    filters = resolve_max(filters or FilterOptions(), discovery, engine.workers if engine else workers)
    job = Job(filters=filters, sft=(Output(fmt, opts.reasoning),), seed=seed, statistics=False)
    with spill_directory(output) as spill:
        result = (engine or Engine(workers=workers)).scan(discovery, job, spill)
        selection = select_sft(result.index, job, result.filtered)
        written = write_sft(result, selection, {"all": output}, lambda _: "all", keep_empty=allow_empty)
    acc = sft_accounting(result, selection.filtered, written, discovery)
    acc |= environment_accounting(result, job, selection.keep, selection.mix, None)
    acc.update(success_policy(job.filters))
    not_empty(acc, "sft", output, allow_empty)
    if not written_through(output):  # no dataset_info.json beside /dev/null or a pipe
        write_side_files(fmt, {Path(output).stem: Path(output).name}, Path(output).parent)
    return _with_contamination(acc, result, job)


def make_kto(
    paths: list[str],
    outputs: dict[str, str],
    filters: FilterOptions | None = None,
    labels: Labels | None = None,
    *,
    reasoning: str | None = None,
    split_of: Any = lambda _: "all",
    seed: int = 0,
    engine: Engine | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    allow_empty: bool = True,
) -> dict[str, Any]:
    """Write a labelled KTO row per kept rollout into ``outputs`` (split -> path; ``split_of`` maps a prompt
    to its split); return the accounting: ``lines == written + sum(filtered) + sum(rejected)``. No row is
    an error unless ``allow_empty`` (a release's splits decide for themselves)."""
    first = next(iter(outputs.values()))
    discovery = discover_rollouts(paths, max_line_bytes, (filters or FilterOptions()).fields_by_flag)
    job = Job(
        filters=resolve_max(filters or FilterOptions(), discovery, engine.workers if engine else None),
        sft=(Output(KTO, reasoning),),
        labels=labels or Labels(),
        seed=seed,
        statistics=False,
    )
    for output in outputs.values():
        prepare_output(output, inputs_of(discovery))
    with spill_directory(first) as spill:
        result = (engine or Engine()).scan(discovery, job, spill)
        selection = select_sft(result.index, job, result.filtered)
        written, per_label = write_kto(
            result, selection, outputs, split_of, job.labels, keep_empty=allow_empty or len(outputs) > 1
        )
    acc = sft_accounting(result, selection.filtered + written.skipped, written, discovery)
    for label in ("desirable", "undesirable"):
        acc[label] = sum(n for (name, _), n in per_label.items() if name == label)
    acc["labels"] = {s: {n: per_label[(n, s)] for n in ("desirable", "undesirable")} for s in outputs}
    acc["label_rule"] = job.labels.describe(job.filters.success.describe())
    acc |= environment_accounting(result, job, selection.keep, selection.mix, None)
    acc.update(success_policy(job.filters))
    if len(outputs) == 1:
        not_empty(acc, "kto", first, allow_empty)
    return _with_contamination(acc, result, job)


def make_dpo(
    paths: list[str],
    output: str,
    filters: FilterOptions | None = None,
    options: DpoOptions | None = None,
    *,
    seed: int = 0,
    workers: int | None = None,
    engine: Engine | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    allow_empty: bool = False,
    recollect: str | None = None,
) -> dict[str, Any]:
    """Pair rollouts of the same prompt and write DPO rows to ``output``; return the accounting. With
    ``recollect``, the prompts left without a pair are written there as NeMo Gym task rows. No pair is an
    error (nothing is left at ``output``) unless ``allow_empty``."""
    opts = options or DpoOptions()
    fmt = format_named(opts.format)
    pairing = Pairing(
        opts.pairing, opts.min_margin, opts.max_pairs_per_prompt, opts.split_at_divergence, opts.margin_scale
    )
    discovery = discover_for(paths, output, max_line_bytes, filters or FilterOptions())
    if recollect is not None:
        check_recollect(discovery, recollect)
    filters = resolve_max(filters or FilterOptions(), discovery, engine.workers if engine else workers)
    job = Job(
        filters=filters, dpo=(Output(fmt, opts.reasoning),), pairing=pairing, seed=seed, statistics=False
    )
    with spill_directory(output) as spill:
        engine = engine or Engine(workers=workers)
        result = engine.scan(discovery, job, spill)
        selection = engine.select_dpo(result.index, job, spill)
        mix_pairs(selection, result.index, job)
        written = write_dpo(
            result,
            selection,
            {"all": output},
            lambda _: "all",
            fmt,
            pairing.split_at_divergence,
            keep_empty=allow_empty,
        )
    if not written_through(output):  # no dataset_info.json beside /dev/null or a pipe
        write_side_files(fmt, {}, Path(output).parent, {Path(output).stem: Path(output).name})
    acc = dpo_accounting(result, selection, written, job, discovery)
    acc |= environment_accounting(result, job, None, {}, selection)
    acc.update(success_policy(job.filters))
    if recollect is not None:
        acc["recollect"] = write_recollect(discovery, result.index, selection, recollect)
    not_empty(acc, "dpo", output, allow_empty)
    return _with_contamination(acc, result, job)


def _with_contamination(acc: dict[str, Any], result: Scan, job: Job) -> dict[str, Any]:
    found = contamination(result, job.filters)
    return acc if found is None else {**acc, "contamination": found}


def dpo_accounting(
    result: Scan, selection: DpoSelection, written: Written, job: Job, discovery: Discovery | None = None
) -> dict:
    """``filtered``: rollouts a quality filter bars from the chosen side (they can still be rejected sides)."""
    return {
        **read_accounting(result, discovery),
        "prompts": selection.prompts,
        "margin": margin_accounting(result.index, job),
        "pairs": len(selection.pairs) + selection.dropped_by_mix,  # over_mix_share ones: in skipped
        "written": written.total,
        "splits": dict(written.rows),
        "unpaired": dict(sorted(selection.unpaired.items())),
        "filtered": dict(sorted(ineligible(result.filtered, result.index, job).items())),
        "skipped": dict(written.skipped)
        | ({"over_mix_share": selection.dropped_by_mix} if selection.dropped_by_mix else {}),
        "export": dict(written.notes),
    }


def make_sample(
    paths: list[str],
    output: str,
    strata: tuple[Stratum, ...] = DEFAULT_STRATA,
    *,
    by_env: bool = False,
    env_field: str | None = None,
    seed: int = 0,
    workers: int | None = None,
    engine: Engine | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """A seeded review sample stratified by reward (``by_env``: within each environment), written as the
    original rollout lines (none is an error unless ``allow_empty``)."""
    filters = FilterOptions(drop_truncated=False, env_field=env_field)
    job = Job(strata=strata, seed=seed, filters=filters, statistics=False, sample_by_env=by_env)
    discovery = discover_for(paths, output, max_line_bytes)
    with spill_directory(output) as spill:
        result = (engine or Engine(workers=workers)).scan(discovery, job, spill)
    if result.sample or allow_empty:  # no sample replaces nothing: the run is refused below
        write_sample(result.sample, output)
    per_stratum = Counter(name for name, *_ in result.sample)
    acc = {
        **read_accounting(result, discovery),
        "written": len(result.sample),
        "filtered": {},
        "strata": {s.name: {"wanted": s.count, "written": per_stratum[s.name]} for s in strata}
        if not by_env
        else {
            name: {"wanted": _wanted(name, strata), "written": n} for name, n in sorted(per_stratum.items())
        },
    }
    not_empty(acc, "sample", output, allow_empty)
    return acc


def take_inventory(
    paths: list[str],
    workers: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    filters: FilterOptions | None = None,
) -> dict[str, Any]:
    """Read every line of the inputs and summarise them (the API behind ``rollforge inspect``), each
    environment's success under ``filters``' policy. Files are read on every core; stdin in this process.
    A file named twice is read once (``same_file``)."""
    discovery = discover_rollouts(paths, max_line_bytes)
    job = Job(filters=filters or FilterOptions())
    if any(s.path == STDIN for s in discovery.sources):
        inventory = Inventory(success=job.filters.success_where_known, policy=job.filters.policy)
        for record in track(iter_records(discovery, job.decoder()), "reading", unit="lines"):
            inventory.add(record)
    else:  # no outputs: every line is converted, nothing is spilled
        inventory = scan(discovery, job, None, workers).inventory
    summary = inventory.summary()
    summary["companions"] = [
        {"path": c.path, "kind": c.kind, "lines": count_lines(c.path) if c.kind == "failures" else None}
        for c in discovery.companions
    ]
    if discovery.same_file:
        summary["same_file"] = discovery.same_file
    return summary


def _wanted(name: str, strata: tuple[Stratum, ...]) -> int:
    """The count of the stratum an 'ENV [low, high)' sample name draws from."""
    return next(s.count for s in strata if name.endswith(" " + s.name))


def success_policy(filters: FilterOptions) -> dict[str, Any]:
    """The success definition in force, and whether only successes are kept: every summary states both."""
    return {"success": filters.success.describe(), "success_only": bool(filters.success_only)}


def not_empty(acc: dict[str, Any], what: str, output: str, allow_empty: bool) -> None:
    """Refuse an output with no row (see rollforge.empty); the writers left whatever was at ``output``
    untouched (an earlier dataset there is not replaced by an empty file)."""
    if acc["written"] or allow_empty:
        return
    refuse_empty(acc, what, output, acc.get("success"))


def write_sample(sample: list[tuple[Any, ...]], output: str) -> None:
    with open_output(output) as fh:
        for _, _, line in sample:
            fh.write(line if line.endswith(b"\n") else line + b"\n")


@dataclass(frozen=True)
class SplitByPrompt:
    """prompt_id -> "train" or "validation", seeded; picklable, so writer processes can use it."""

    seed: int
    val_fraction: float

    def __call__(self, prompt_id: str) -> str:
        return "validation" if validation_split(self.seed, prompt_id, self.val_fraction) else "train"


def split_function(seed: int, val_fraction: float) -> SplitByPrompt:
    return SplitByPrompt(seed, val_fraction)


def write_side_files(
    fmt: Format, files: dict[str, str], folder: Path, pairwise: dict[str, str] | None = None
) -> None:
    """The files a format's trainer reads beside its rows (LLaMA-Factory's dataset_info.json), written
    atomically into ``folder``; ``files`` (SFT) and ``pairwise`` (DPO) map dataset names to the file names
    written there."""
    for name, data in (fmt.side_files(files, pairwise or {}) if fmt.side_files else {}).items():
        with atomic_file(folder / name) as fh:
            fh.write(data)
