"""Where each side of a comparison came from, read from the ``<stem>_collect.json`` beside its rollouts files
and the models' ``lineage.json`` (rollforge.lineage): which model, trained on which release, over which
tasks. Two checks use it: both sides must have run the same task set, and no evaluated prompt may be in the
data a side's model was trained on (then its score on that prompt is not a held-out score)."""

from __future__ import annotations

from typing import Any

from rollforge.decontam import EvalTasks, build_eval_tasks
from rollforge.errors import RollforgeError
from rollforge.io.sources import STDIN, discover, is_url, split_name
from rollforge.lineage import read_collect_record, releases_of, training_files, training_prompts

SIDES = ("baseline", "candidate")


def side_provenance(paths: list[str]) -> dict[str, Any]:
    """The collect records of a side's rollouts files: their models (with lineage) and task sets."""
    records, unrecorded = [], 0
    for source in discover(paths).sources:
        record = None if source.path == STDIN or is_url(source.path) else read_collect_record(source.path)
        if record is None:
            unrecorded += 1
        else:
            records.append(record)
    models: dict[tuple[Any, Any], dict[str, Any]] = {}
    tasks: dict[tuple[Any, Any], dict[str, Any]] = {}
    for record in records:
        model = record.get("model") or {}
        models.setdefault((model.get("name"), model.get("path")), model)
        task = record.get("tasks") or {}
        tasks.setdefault((task.get("sha256"), task.get("rows")), task)
    return {
        "files_with_record": len(records),
        "files_without_record": unrecorded,
        "models": [_model_entry(m) for m in models.values()],
        "tasks": list(tasks.values()),
    }


def _model_entry(model: dict[str, Any]) -> dict[str, Any]:
    """A model as the comparison reports it: name, directory, and what each model of its chain was trained
    on (newest first; empty when rollforge did not train it)."""
    return {
        "name": model.get("name"),
        "path": model.get("path"),
        "trained_on": releases_of(model.get("lineage")),
    }


def different_tasks(result: dict[str, Any]) -> str | None:
    """Why the two sides are not runs over one task set, or None. With a collect record on both sides the
    task files decide (same sha256 and rows); without, the prompts: most of each side's must be paired."""
    base, cand = (result[side]["provenance"]["tasks"] for side in SIDES)
    if base and cand:
        if {(t["sha256"], t["rows"]) for t in base} != {(t["sha256"], t["rows"]) for t in cand}:
            return f"the baseline ran {_tasks_text(base)}, the candidate {_tasks_text(cand)}"
        return None
    paired, b, c = result["n_paired"], result["baseline"]["prompts"], result["candidate"]["prompts"]
    if 2 * paired < b or 2 * paired < c:
        return f"only {paired} prompts are on both sides (baseline {b}, candidate {c})"
    return None


def _tasks_text(tasks: list[dict[str, Any]]) -> str:
    return " + ".join(
        f"{t.get('path')} ({t.get('rows')} rows, sha256 {str(t.get('sha256'))[:12]})" for t in tasks
    )


def check_task_sets(result: dict[str, Any], allow: bool) -> None:
    """Refuse a comparison over different task sets, unless ``allow`` (then it is a warning)."""
    problem = different_tasks(result)
    if problem is None:
        return
    if not allow:
        raise RollforgeError(
            f"the two sides ran different task sets: {problem}",
            hint="collect both sides on the same tasks file, or pass --allow-different-tasks to pair the "
            "prompts they share",
        )
    result["warnings"].append(f"different task sets (--allow-different-tasks): {problem}")


def contamination_warnings(result: dict[str, Any], evaluated: dict[str, set[str]]) -> list[str]:
    """A warning for each release (or data file) a side's model chain was trained on that holds any of the
    prompts that side was evaluated on (same prompt_id, or a long shared word run: rollforge.decontam); and
    for each one that cannot be read any more."""
    out = []
    for side in SIDES:
        models = [m for m in result[side]["provenance"]["models"] if m["trained_on"]]
        if not models:
            continue
        tasks = _eval_tasks(result[side]["files"])
        for model in models:
            for trained in model["trained_on"]:
                out += _check_one(side, model, trained, evaluated[side], tasks)
    return out


def _eval_tasks(paths: list[str]) -> EvalTasks | None:
    """The evaluated prompts of a side, for n-gram matching (its plain JSONL files; None if it has none)."""
    files = [s.path for s in discover(paths).sources if s.path != STDIN and not is_url(s.path)]
    files = [f for f in files if split_name(f)[1] == ".jsonl"]
    return build_eval_tasks(files) if files else None


def _check_one(
    side: str, model: dict[str, Any], trained: dict[str, Any], evaluated: set[str], tasks: EvalTasks | None
) -> list[str]:
    release = trained.get("release")
    what = f"release {release['path']}" if release else f"data {trained['data'].get('train_file')}"
    files, missing = training_files(trained)
    held, near = set(), 0
    for pid, prompt in training_prompts(files):
        if pid in evaluated:
            held.add(pid)
        elif tasks is not None and tasks.match(pid or "", prompt):
            near += 1
    out = []
    if held or near:
        text = f"holds {len(held)} of the {len(evaluated)} evaluated prompts"
        if near:
            text += f" and {near} more prompts sharing a {tasks.n if tasks else ''}-word run with them"
        out.append(
            f"the {side}'s model {model['name']} descends from {trained.get('model')}, trained on {what}, which "
            f"{text}: its scores on them are not held-out (build releases with --exclude-tasks HELDOUT.jsonl)"
        )
    if missing:
        out.append(f"cannot check {what} for evaluated prompts: {missing[0]} cannot be read")
    return out


def provenance_lines(result: dict[str, Any]) -> list[str]:
    """One line per side: its model, and the release that model was trained on, when known."""
    lines = []
    for side in SIDES:
        prov = result[side].get("provenance")
        if not prov or not prov["models"]:
            lines.append(f"{side}: model unknown (no collect record beside its rollouts)")
            continue
        for model in prov["models"]:
            text = f"{side}: model {model['name']}"
            trained = model["trained_on"]
            if not trained:
                text += " (no lineage: not trained by rollforge, or its directory is unknown)"
            else:
                first = trained[0]
                release = first.get("release")
                text += (
                    f", trained on release {release['path']} (manifest sha256 {release['manifest_sha256'][:12]})"
                    if release
                    else f", trained on {first['data'].get('train_file')}"
                )
                if len(trained) > 1:
                    text += f", after {len(trained) - 1} earlier round(s)"
            lines.append(text)
    return lines
