"""Build a release: one read of the rollouts, then every dataset, the review sample, the manifest, the
dataset card, trainer configs and the validation report, in a hidden directory renamed into place at the
end. The version name is reserved first (two builds at once make two versions). A build that dies leaves no
version directory; its hidden leftovers are swept by the next run on this host (rollforge.io.leftovers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from rollforge.build.card import write_card, write_trainer_configs
from rollforge.build.kto import write_kto_config
from rollforge.build.manifest import MANIFEST, InputHashes, inputs_entry, manifest, now, output_entry
from rollforge.build.recipe import Recipe
from rollforge.build.versions import reserved_version
from rollforge.empty import refuse_empty
from rollforge.engine.choose import Engine
from rollforge.engine.job import Job, Output, parse_strata
from rollforge.engine.local import Scan
from rollforge.engine.mixing import environment_accounting, margin_accounting, mix_pairs
from rollforge.engine.observed import resolve_max
from rollforge.engine.recollect import check_recollect, write_recollect
from rollforge.engine.select import DpoSelection, SftSelection, ineligible, select_sft
from rollforge.engine.write import Written, write_dpo, write_sft
from rollforge.export.formats import DEFAULT_FORMATS, TRL, Format, format_named
from rollforge.filters import filter_options
from rollforge.io.atomic import atomic_dir, atomic_file
from rollforge.io.kinds import discover_rollouts
from rollforge.io.leftovers import sweep
from rollforge.io.sources import Discovery
from rollforge.pairs import Pairing
from rollforge.parallel import Call, run_calls
from rollforge.pipeline import (
    contaminated_rows,
    contamination,
    read_accounting,
    split_function,
    success_policy,
    write_sample,
    write_side_files,
)
from rollforge.progress import status
from rollforge.workers import raise_if_interrupted

PRIMARY = TRL  # a release's sft/ and dpo/ configs; --extra-formats add folders of their own
SPLITS = ("train", "validation")
CONTAMINATED = "contaminated.jsonl"  # with --exclude-tasks: the rollouts dropped as evaluation tasks


@dataclass
class Release:
    path: Path
    manifest: dict[str, Any]
    outputs: list[dict[str, Any]] = field(default_factory=list)


def build(recipe: Recipe) -> Release:
    root = Path(recipe.output)
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    sweep(root)  # what builds killed on this host left: hidden directories, reservations
    try:
        with reserved_version(root, recipe.version) as version, atomic_dir(root / version) as tmp:
            release = _build_into(recipe, tmp, (root / version).resolve())
            raise_if_interrupted()  # never put a release in place after a Ctrl-C
    except BaseException:
        if created:  # a failed first build leaves nothing behind, not even an empty releases directory
            with contextlib.suppress(OSError):
                root.rmdir()
        raise
    release.path = root / version
    return release


def _job(recipe: Recipe) -> Job:
    named = [*DEFAULT_FORMATS, *map(format_named, recipe.extra_formats)]
    formats = list(dict.fromkeys(named))  # each once, the primary first
    sft = [Output(f, recipe.reasoning) for f in formats]
    dpo = [Output(f, recipe.reasoning) for f in formats if f.dpo] if recipe.dpo else []
    values = recipe.model_dump()
    pairing = Pairing(
        recipe.pairing,
        recipe.min_margin,
        recipe.max_pairs_per_prompt,
        recipe.split_at_divergence,
        recipe.margin_scale,
    )
    return Job(
        filters=filter_options(values),
        sft=tuple(sft),
        dpo=tuple(dpo),
        pairing=pairing,
        strata=parse_strata(recipe.strata),
        sample_by_env=recipe.sample_by_env,
        seed=recipe.seed,
    )


def layout(fmt: Format, kind: str, split: str) -> str:
    """The primary format's files are the dataset's configs (sft/, dpo/); other formats live in a folder of
    their own."""
    return f"{kind}/{split}.jsonl" if fmt is PRIMARY else f"{fmt.name}/{kind}_{split}.jsonl"


def _build_into(recipe: Recipe, tmp: Path, final: Path) -> Release:
    data, outputs, job = _datasets_and_manifest(recipe, tmp, final)
    # The scan's index and selections are freed here, before the report forks its readers and figure drawers.
    rows = data["accounting"]["sft"]["written"] + data["accounting"].get("dpo", {}).get("written", 0)
    with status(f"measuring the release for its report and trainer configs: {rows:,} rows and pairs"):
        report = _report_data(tmp, final, recipe)
    data["sequence_lengths"] = {"counted": report.tokens.label, **report.sequence_lengths()}
    judge_with_manifest(report, data)
    data["warnings"] = report.warnings  # the report's warnings, for the terminal and for whoever reads this
    _write_manifest(tmp, data)
    if "kto" in data["accounting"]:
        data["sequence_lengths"]["kto"] = data["accounting"]["kto"].pop("length")
        _write_manifest(tmp, data)
    kinds = ("sft", *(["dpo"] if job.dpo else []), *(["kto"] if recipe.kto else []))
    write_card(tmp, final, data, kinds)
    write_trainer_configs(tmp, final, data, [o.format for o in job.sft], kinds)
    with status("writing the validation report"):
        from rollforge.report import write_report

        write_report(report, tmp / "report.html", recipe.workers)
    return Release(final, data, outputs)


def _datasets_and_manifest(
    recipe: Recipe, tmp: Path, final: Path
) -> tuple[dict[str, Any], list[dict[str, Any]], Job]:
    """Scan, select and write the datasets, sample, rejects and manifest (the report reads the release)."""
    started = now()
    job = _job(recipe)
    discovery = discover_rollouts(recipe.inputs, recipe.max_line_bytes, job.filters.fields_by_flag)
    if recipe.recollect is not None:
        check_recollect(discovery, recipe.recollect)
    job = dataclasses.replace(job, filters=resolve_max(job.filters, discovery, recipe.workers))
    digests = InputHashes(discovery)
    spill = tmp / ".spill"
    spill.mkdir()
    engine = Engine(recipe.engine, recipe.workers, recipe.ray_address, recipe.memory_budget)
    with digests.stdin_tap():  # what is read from stdin is hashed as it streams
        result = engine.scan(discovery, job, str(spill), lambda: _while_reading(digests))
    split_of = split_function(recipe.seed, recipe.val_fraction)
    with status(f"writing datasets ({_formats(job)}) from {result.inventory.rollouts:,} rollouts"):
        sft_sel = select_sft(result.index, job, result.filtered)
        dpo_sel = DpoSelection()
        if job.dpo:
            dpo_sel = engine.select_dpo(result.index, job, str(spill))
            mix_pairs(dpo_sel, result.index, job)
        sft, dpo = _write_datasets(result, sft_sel, dpo_sel, job, tmp, split_of, recipe.workers)
        write_sample(result.sample, str(tmp / "review" / "sample.jsonl"))
        _write_rejects(result, tmp / "rejected.jsonl")
        contaminated = _write_contaminated(result, job, tmp / CONTAMINATED)
    shutil.rmtree(spill)
    accounting = _accounting(result, sft_sel, sft, dpo_sel, dpo, job, discovery)
    if recipe.recollect is not None and "dpo" in accounting:
        accounting["dpo"]["recollect"] = write_recollect(discovery, result.index, dpo_sel, recipe.recollect)
    _refuse_no_rows(accounting, recipe, final)
    outputs = [output_entry(tmp, path, rows, sha) for path, rows, sha in _output_files(tmp, sft, dpo)]
    if recipe.kto:
        accounting["kto"] = write_kto_config(recipe, tmp, SPLITS, split_of)  # a second read
        outputs += [output_entry(tmp, tmp / "kto" / f"{s}.jsonl", accounting["kto"][s]) for s in SPLITS]
    outputs += [
        output_entry(tmp, tmp / p, n)
        for p, n in (
            ("review/sample.jsonl", len(result.sample)),
            ("rejected.jsonl", len(result.inventory.rejected)),
        )
    ]
    if contaminated is not None:
        outputs.append(output_entry(tmp, tmp / CONTAMINATED, contaminated))
    extra = {
        "inventory": _inventory(result),
        "companions": [{"path": c.path, "kind": c.kind} for c in discovery.companions],
    }
    if discovery.same_file:
        extra["same_file"] = discovery.same_file
    inputs = inputs_entry(discovery, digests, dict(result.lines_by_file))
    data = manifest(recipe.model_dump(), inputs, outputs, accounting, started, extra)
    _write_manifest(tmp, data)
    return data, outputs, job


def _write_manifest(tmp: Path, data: dict[str, Any]) -> None:
    with atomic_file(tmp / MANIFEST) as fh:
        fh.write(msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n")


def _while_reading(digests: InputHashes) -> None:
    """What the parent does once the read's workers run, instead of waiting: start hashing the inputs (on a
    thread: hashlib releases the GIL), and import the report's plotting (numpy and matplotlib: an import
    that would otherwise run alone after the read). With one worker this runs before the read instead."""
    digests.start()
    import rollforge.report.plots  # noqa: F401


def _formats(job: Job) -> str:
    kinds = [f"SFT {', '.join(o.format.name for o in job.sft)}"] + [
        f"DPO {', '.join(o.format.name for o in job.dpo)}"
    ] * bool(job.dpo)
    return "; ".join(kinds)


def _write_datasets(
    result: Scan,
    sft_sel: SftSelection,
    dpo_sel: DpoSelection,
    job: Job,
    tmp: Path,
    split_of: Any,
    workers: int | None,
) -> tuple[dict[str, Written], dict[str, Written]]:
    """Every format's files, one task each, on up to ``workers`` cores. The rows are rendered already, but
    copying them is still Python work per row (and a DPO row is assembled from its two sides), so forked
    processes beat threads. They inherit the index and selections (``common``) rather than each receiving
    a pickled copy. Results come back in the order of the formats (benchmarks/DESIGN.md: the figures)."""
    calls: list[Call] = [
        (_write_sft_format, (_paths(tmp, o.format, "sft"), k)) for k, o in enumerate(job.sft)
    ]
    calls += [
        (_write_dpo_format, (_paths(tmp, o.format, "dpo"), o.format, job.pairing.split_at_divergence, k))
        for k, o in enumerate(job.dpo)
    ]
    done = run_calls(calls, workers, common=(result, sft_sel, dpo_sel, split_of))
    sft_formats, dpo_formats = [o.format.name for o in job.sft], [o.format.name for o in job.dpo]
    written = (
        dict(zip(sft_formats, done[: len(sft_formats)], strict=True)),
        dict(zip(dpo_formats, done[len(sft_formats) :], strict=True)),
    )
    for fmt in (o.format for o in job.sft if o.format is not PRIMARY):  # beside a folder of its own
        files, pairwise = (
            {f"{kind}_{s}": Path(layout(fmt, kind, s)).name for s in SPLITS} for kind in ("sft", "dpo")
        )
        write_side_files(fmt, files, tmp / fmt.name, pairwise if fmt.name in dpo_formats else {})
    return written


Selected = tuple[Scan, SftSelection, DpoSelection, Any]  # what every writer reads: scan, selections, split_of


def _write_sft_format(selected: Selected, paths: dict[str, str], k: int) -> Written:
    result, sft_sel, _, split_of = selected
    return write_sft(result, sft_sel, paths, split_of, k)


def _write_dpo_format(selected: Selected, paths: dict[str, str], fmt: Format, split: bool, k: int) -> Written:
    result, _, dpo_sel, split_of = selected
    return write_dpo(result, dpo_sel, paths, split_of, fmt, split, k)


def _paths(tmp: Path, fmt: Format, kind: str) -> dict[str, str]:
    return {split: str(tmp / layout(fmt, kind, split)) for split in SPLITS}


def _output_files(tmp: Path, sft: dict[str, Written], dpo: dict[str, Written]) -> list[tuple[Path, int, str]]:
    files = []
    for kind, written in (("sft", sft), ("dpo", dpo)):
        for name, w in written.items():
            files += [(tmp / layout(format_named(name), kind, s), w.rows[s], w.sha256[s]) for s in SPLITS]
    return files


def _write_rejects(result: Scan, path: Path) -> None:
    """Every rejected line, with file, line, reason and message: nothing is lost silently."""
    with atomic_file(path) as fh:
        for r in result.inventory.rejected:
            fh.write(
                msgspec.json.encode(
                    {"file": r.file, "line": r.line, "reason": r.reason, "message": r.message}
                )
            )
            fh.write(b"\n")


def _write_contaminated(result: Scan, job: Job, path: Path) -> int | None:
    """With --exclude-tasks: every rollout dropped as contaminated (prompt_id, rollout_id), one a line."""
    if job.filters.exclude_tasks is None:
        return None
    rows = contaminated_rows(result)
    with atomic_file(path) as fh:
        for prompt_id, rollout_id in rows:
            fh.write(msgspec.json.encode({"prompt_id": prompt_id, "rollout_id": rollout_id}) + b"\n")
    return len(rows)


def _accounting(
    result: Scan,
    sft_sel: SftSelection,
    sft: dict[str, Written],
    dpo_sel: DpoSelection,
    dpo: dict[str, Written],
    job: Job,
    discovery: Discovery,
) -> dict[str, Any]:
    trl_sft = sft[PRIMARY.name]
    acc: dict[str, Any] = {**read_accounting(result, discovery), **success_policy(job.filters)}
    acc["sft"] = {
        "written": trl_sft.total,
        **dict(trl_sft.rows),
        "filtered": dict(sorted(sft_sel.filtered.items())),
        "export": dict(trl_sft.notes),
    }
    if PRIMARY.name in dpo:
        trl_dpo = dpo[PRIMARY.name]
        acc["dpo"] = {
            "prompts": dpo_sel.prompts,
            "margin": margin_accounting(result.index, job),
            "pairs": len(dpo_sel.pairs) + dpo_sel.dropped_by_mix,  # over_mix_share ones: in skipped
            "written": trl_dpo.total,
            **dict(trl_dpo.rows),
            "unpaired": dict(sorted(dpo_sel.unpaired.items())),
            "filtered": dict(sorted(ineligible(result.filtered, result.index, job).items())),
            "skipped": dict(trl_dpo.skipped)
            | ({"over_mix_share": dpo_sel.dropped_by_mix} if dpo_sel.dropped_by_mix else {}),
            "export": dict(trl_dpo.notes),
        }
    acc |= environment_accounting(result, job, sft_sel.keep, sft_sel.mix, dpo_sel if job.dpo else None)
    found = contamination(result, job.filters)
    if found is not None:
        acc["contamination"] = found
    acc["sample"] = {"rows": len(result.sample), "strata": dict(Counter(name for name, *_ in result.sample))}
    acc["formats"] = {
        fmt: {
            "sft": dict(sft[fmt].rows),
            "sft_skipped": dict(result.skipped[k]) if k < len(result.skipped) else {},
            "dpo": dict(dpo[fmt].rows) if fmt in dpo else None,
            "dpo_skipped": dict(dpo[fmt].skipped) if fmt in dpo else None,
            "sft_export": dict(sft[fmt].notes),
            "dpo_export": dict(dpo[fmt].notes) if fmt in dpo else None,
        }
        for k, fmt in enumerate(o.format.name for o in job.sft)
        if k > 0
    }
    return acc


def _refuse_no_rows(acc: dict[str, Any], recipe: Recipe, final: Path) -> None:
    """A release with no row at all is an error (the version is never put in place) unless allow_empty."""
    dpo = acc.get("dpo") or {}
    if recipe.allow_empty or acc["sft"]["written"] or dpo.get("written"):
        return
    refuse_empty({**acc, **acc["sft"], "unpaired": dpo.get("unpaired")}, "build", str(final), acc["success"])


def judge_with_manifest(report: Any, data: dict[str, Any]) -> None:
    """The checklist again, now that the manifest exists: its accounting (cut-off rollouts, filters) and
    its row counts are what the report judges (the report was measured before the manifest was written)."""
    from rollforge.report.checks import evaluate
    from rollforge.report.thresholds import thresholds

    report.manifest, report.accounting = data, data["accounting"]
    report.thresholds = thresholds(data["recipe"].get("checks"))
    report.checks = evaluate(report)


def _inventory(result: Scan) -> dict[str, Any]:
    summary = result.inventory.summary()
    summary.pop("rejected")  # every reject is in rejected.jsonl; the counts are in the accounting
    return summary


def _report_data(tmp: Path, final: Path, recipe: Recipe) -> Any:
    """The report's numbers over the released rows: its lengths also set the trainer configs'."""
    from rollforge.report import report_paths

    filters = filter_options(recipe.model_dump())  # the report counts tokens as --max-tokens did
    data = report_paths(
        [str(tmp)], tokenizer=filters.tokenizer, max_tokens=filters.max_tokens, workers=recipe.workers
    )
    data.sources = [str(final)]  # the page names the release, not the hidden directory it is built in
    return data
