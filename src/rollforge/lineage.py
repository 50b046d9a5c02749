"""Which data made which model, and which model made which rollouts: the links of the improvement loop.

Two small JSON files, each written atomically beside what it describes:

- ``MODEL_DIR/lineage.json`` (written by ``rollforge train``): the training data (the release's path,
  version and manifest sha256, or the JSONL file), the base model with *its* lineage embedded (so a chain of
  rounds is followable even when older directories are gone), the trainer and its full config, and the
  run's metrics (final train loss, eval loss, steps, rows).
- ``<stem>_collect.json`` beside a ``rollforge collect`` output ``<stem>.jsonl``: the tasks file (path,
  sha256, rows), how rollouts were made (endpoint or agent, sampling, repeats), the model and its lineage
  when its directory is known, and the run's counts.

Readers: :func:`read_lineage` (a model directory; None when it has none), :func:`read_collect_record` (a
rollouts file; None when it has none), :func:`releases_of` (every release a chain of models was trained on,
newest first), :func:`training_files` and :func:`training_prompts` (the prompts a model was trained on).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from rollforge.errors import RollforgeError
from rollforge.io.atomic import atomic_file
from rollforge.io.sources import split_name
from rollforge.version import __version__

LINEAGE = "lineage.json"
COLLECT_RECORD = "_collect.json"  # <stem>_collect.json beside <stem>.jsonl
MANIFEST = "manifest.json"
# The files a release's trainers read (the primary format): where its prompts are.
RELEASE_DATA = ("sft/train.jsonl", "sft/validation.jsonl", "dpo/train.jsonl", "dpo/validation.jsonl")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    with atomic_file(path) as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")


def _read_json(path: Path, what: str) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RollforgeError(f"cannot read {what} {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RollforgeError(f"{what} {path} is not a JSON object")
    return data


# --- models -------------------------------------------------------------------------------------------


def read_lineage(model: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The lineage of a model directory; None for a hub id, a directory without one, or None."""
    if model is None or not Path(model).is_dir():
        return None
    return _read_json(Path(model) / LINEAGE, "lineage")


def release_info(data: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Path, version and manifest sha256 of the release ``data`` is, or is a data file of (``sft/train.jsonl``
    in a release directory); None when it is neither."""
    if Path(data).is_file():
        data = Path(data).resolve().parent.parent
    manifest = Path(data) / MANIFEST
    if not manifest.is_file():
        return None
    recipe = (_read_json(manifest, "manifest") or {}).get("recipe") or {}
    return {
        "path": str(Path(data).resolve()),
        "version": Path(data).resolve().name,
        "manifest_sha256": sha256_of(manifest),
        "exclude_tasks": recipe.get("exclude_tasks"),
    }


def base_model(model: str) -> dict[str, Any]:
    """The model a run started from: its name, its directory when local, and its own lineage."""
    local = Path(model).is_dir()
    return {
        "name": model,
        "path": str(Path(model).resolve()) if local else None,
        "lineage": read_lineage(model) if local else None,
    }


def training_lineage(
    *,
    method: str,
    model: str,
    output_dir: str | os.PathLike[str],
    data: str | os.PathLike[str],
    train_file: str | os.PathLike[str],
    validation_file: str | os.PathLike[str] | None,
    config: dict[str, Any],
    config_file: str | os.PathLike[str] | None,
    lora: dict[str, Any] | None,
    metrics: dict[str, Any],
    trainer: dict[str, Any],
) -> dict[str, Any]:
    """The lineage of a trained model (see the module docstring); ``trainer``: library versions."""
    return {
        "kind": "rollforge.lineage",
        "rollforge_version": __version__,
        "created_at": now(),
        "model": str(Path(output_dir).resolve()),
        "method": method,
        "release": release_info(data),
        "data": {
            "path": str(Path(data).resolve()),
            "train_file": str(Path(train_file).resolve()),
            "train_sha256": sha256_of(train_file),
            "validation_file": str(Path(validation_file).resolve()) if validation_file else None,
        },
        "base_model": base_model(model),
        "trainer": {**trainer, "lora": lora},
        "config_file": str(Path(config_file).resolve()) if config_file else None,
        "config": config,
        "metrics": metrics,
    }


def write_lineage(model_dir: str | os.PathLike[str], lineage: dict[str, Any]) -> Path:
    path = Path(model_dir) / LINEAGE
    _write_json(path, lineage)
    return path


def chain(lineage: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """This lineage, then its base model's, and so on down to a model rollforge did not train."""
    while lineage:
        yield lineage
        lineage = (lineage.get("base_model") or {}).get("lineage")


def releases_of(lineage: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What each model of the chain was trained on, newest first: ``{"model", "release", "data"}``."""
    return [
        {"model": link.get("model"), "release": link.get("release"), "data": link.get("data") or {}}
        for link in chain(lineage)
    ]


def training_files(trained_on: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The data files of what a model was trained on (an entry of :func:`releases_of`): every data file of
    its release, else its train file; and those that cannot be found any more (moved or deleted)."""
    release = trained_on.get("release")
    if release:
        names = [str(Path(release["path"]) / name) for name in RELEASE_DATA]
        found = [n for n in names if os.path.isfile(n)]
        return (found, []) if found else ([], [str(Path(release["path"]) / RELEASE_DATA[0])])
    train_file = (trained_on.get("data") or {}).get("train_file")
    if not train_file:
        return [], []
    return ([train_file], []) if os.path.isfile(train_file) else ([], [train_file])


def training_prompts(files: list[str]) -> Iterator[tuple[str | None, list[dict[str, Any]]]]:
    """(prompt_id, prompt messages) of each distinct prompt in SFT rows (the messages before the first
    assistant turn) or DPO rows (their ``prompt``); rows without a prompt id are each their own."""
    seen: set[str] = set()
    for name in files:
        with open(name, "rb") as fh:
            for line in fh:
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(row, dict):
                    continue
                pid = row.get("prompt_id") if isinstance(row.get("prompt_id"), str) else None
                if pid is not None:
                    if pid in seen:
                        continue
                    seen.add(pid)
                yield pid, _prompt_of(row)


def _prompt_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(row.get("prompt"), list):
        return row["prompt"]
    messages: list[Any] = row["messages"] if isinstance(row.get("messages"), list) else []
    prompt = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") == "assistant":
            break
        prompt.append(message)
    return prompt


# --- rollouts -----------------------------------------------------------------------------------------


def collect_record_path(output: str | os.PathLike[str]) -> Path:
    """Where the record of the collect run that wrote ``output`` lives: ``<stem>_collect.json``."""
    return Path(split_name(os.fspath(output))[0] + COLLECT_RECORD)


def tasks_info(tasks: str | os.PathLike[str], rows: int, limit: int | None) -> dict[str, Any]:
    """The task set of a run: the file (path, sha256) and how many of its rows were used."""
    return {"path": str(Path(tasks).resolve()), "sha256": sha256_of(tasks), "rows": rows, "limit": limit}


def model_info(name: str | None, model_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The model that made rollouts: the name it was served under, its directory (``model_dir``, else the
    name when it is a local directory, as with ``transformers serve``) and that directory's lineage."""
    directory = model_dir if model_dir is not None else name
    local = directory is not None and Path(directory).is_dir()
    return {
        "name": name,
        "path": str(Path(directory).resolve()) if local and directory is not None else None,
        "lineage": read_lineage(directory) if local else None,
    }


def write_collect_record(output: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """Write the record of a collect run beside its output (``record``: tasks, model, source, counts)."""
    path = collect_record_path(output)
    _write_json(
        path, {"kind": "rollforge.collect", "rollforge_version": __version__, "written_at": now(), **record}
    )
    return path


def read_collect_record(rollouts: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The record beside a rollouts file; None when it has none (collected by another tool)."""
    return _read_json(collect_record_path(rollouts), "collect record")
