"""Lineage: `train` writes lineage.json (release, base model and its lineage, trainer, config, metrics),
`collect` writes <stem>_collect.json (tasks, model and its lineage), and `compare` reads both: which model and
release each side came from, same task set or a refusal, and a warning when a side's model was trained on a
release holding evaluated prompts. Real `rollforge build` and `rollforge train` runs on the tiny model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from gym_rollouts import answer, rollout, user, write_jsonl
from test_collect_fakes import FakeServer, Reply, completion
from test_decontam import PROBLEMS

from rollforge.build.recipe import make_recipe
from rollforge.build.release import build
from rollforge.cli.main import main
from rollforge.compare import CompareOptions, compare
from rollforge.errors import RollforgeError
from rollforge.lineage import (
    collect_record_path,
    model_info,
    read_collect_record,
    read_lineage,
    releases_of,
    tasks_info,
    write_collect_record,
)
from rollforge.tiny import build_tiny_model

TRAIN = [f"Reverse: {n}" for n in range(1000, 1012)]
HELDOUT = [f"Reverse: {n}" for n in range(9000, 9006)]


def user_msg(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def task(text: str) -> dict[str, Any]:
    return {"responses_create_params": {"input": [user(text)]}, "expected_answer": text[-4:][::-1]}


def rollouts_on(texts: list[str], reward: float = 1.0) -> list[dict[str, Any]]:
    return [rollout([user(t)], [answer(t[-4:][::-1])], reward) for t in texts for _ in range(2)]


def train(model: Path | str, data: Path, out: Path) -> None:
    args = ["train", "sft", "--model", str(model), "--data", str(data), "-o", str(out), "--max-steps", "2"]
    assert main([*args, "--batch-size", "2"]) == 0


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two releases: v1 leaks the held-out tasks into training, v2 is built with --exclude-tasks. A base,
    a model trained on v1, a second round trained from it on v2's file, and one trained on v2 alone."""
    root = tmp_path_factory.mktemp("loop")
    rollouts = Path(write_jsonl(root / "rollouts.jsonl", rollouts_on(TRAIN + HELDOUT)))
    heldout = Path(write_jsonl(root / "heldout.jsonl", [task(t) for t in HELDOUT]))
    recipe = {
        "inputs": [str(rollouts)],
        "output": str(root / "releases"),
        "val_fraction": 0.0,
        "dpo": False,
        "dedup": "off",
    }  # fmt: skip  (rollouts_on repeats each line byte for byte: keep the copies)
    v1 = build(make_recipe(recipe)).path
    v2 = build(make_recipe({**recipe, "exclude_tasks": str(heldout)})).path
    base = build_tiny_model(root / "base")
    paths = {"root": root, "heldout": heldout, "v1": v1, "v2": v2, "base": base}
    for name, model, data in (
        ("leaky", base, v1),
        ("round2", root / "leaky", v2 / "sft" / "train.jsonl"),
        ("clean", base, v2),
    ):
        train(model, data, root / name)
        paths[name] = root / name
    return paths


def test_train_writes_lineage(loop: dict[str, Path]) -> None:
    lineage = read_lineage(loop["leaky"])
    assert lineage is not None and lineage["kind"] == "rollforge.lineage"
    assert lineage["model"] == str(loop["leaky"].resolve()) and lineage["method"] == "sft"
    manifest = loop["v1"] / "manifest.json"
    assert lineage["release"] == {
        "path": str(loop["v1"].resolve()),
        "version": "v1",
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "exclude_tasks": None,
    }
    train_file = loop["v1"] / "sft" / "train.jsonl"
    assert lineage["data"]["train_file"] == str(train_file.resolve())
    assert lineage["data"]["train_sha256"] == hashlib.sha256(train_file.read_bytes()).hexdigest()
    assert lineage["base_model"] == {
        "name": str(loop["base"]),
        "path": str(loop["base"].resolve()),
        "lineage": None,
    }
    assert (
        lineage["trainer"]["library"] == "trl"
        and lineage["trainer"]["trl"]
        and lineage["trainer"]["lora"] is None
    )
    assert lineage["config"]["max_steps"] == 2 and lineage["config"]["per_device_train_batch_size"] == 2
    metrics = json.loads((loop["leaky"] / "training_metrics.json").read_text())
    assert lineage["metrics"]["train_loss"] == metrics["train_loss"] > 0
    assert lineage["metrics"]["final_logged_loss"] == metrics["log"][-1]["loss"]
    assert lineage["metrics"]["global_step"] == 2 and lineage["metrics"]["train_rows"] == 36
    assert read_lineage(loop["v2"]) is None and read_lineage("Qwen/Qwen3-0.6B") is None


def test_a_chain_of_rounds_is_followable(loop: dict[str, Path]) -> None:
    second = read_lineage(loop["round2"])
    assert second is not None and second["release"]["version"] == "v2"  # trained on a data file of v2
    assert second["base_model"]["lineage"] == read_lineage(loop["leaky"])  # embedded: survives a moved base
    trained_on = releases_of(second)
    assert [t["model"] for t in trained_on] == [str(loop["round2"].resolve()), str(loop["leaky"].resolve())]
    assert trained_on[0]["data"]["train_file"] == str((loop["v2"] / "sft" / "train.jsonl").resolve())
    assert trained_on[0]["data"]["path"] == trained_on[0]["data"]["train_file"]
    assert trained_on[1]["release"]["version"] == "v1"


def test_collect_records_the_model_and_its_lineage(
    loop: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def chat(path: str, body: Any) -> Reply:
        return Reply(body=completion(body["messages"][-1]["content"][-4:][::-1]))

    out = tmp_path / "after.jsonl"
    with FakeServer(chat) as server:
        args = ["collect", str(loop["heldout"]), "-o", str(out), "--base-url", server.url + "/v1"]
        code = main([*args, "--model", "agent", "--model-dir", str(loop["leaky"]), "--verifier", "exact"])
    assert code == 0, capsys.readouterr().err
    record = read_collect_record(out)
    assert record is not None and collect_record_path(out) == tmp_path / "after_collect.json"
    assert record["model"] == {
        "name": "agent",
        "path": str(loop["leaky"].resolve()),
        "lineage": read_lineage(loop["leaky"]),
    }
    heldout = loop["heldout"]
    assert record["tasks"] == {
        "path": str(heldout.resolve()),
        "sha256": hashlib.sha256(heldout.read_bytes()).hexdigest(),
        "rows": len(HELDOUT),
        "limit": None,
    }
    assert record["summary"]["written"] == len(HELDOUT) and record["source"]["verifier"] == "exact"


def side(loop: dict[str, Path], name: str, model: Path | None, texts: list[str], reward: float) -> str:
    """A rollouts file on ``texts`` with a collect record naming ``model`` (as collect writes it)."""
    path = loop["root"] / f"{name}.jsonl"
    write_jsonl(path, rollouts_on(texts, reward))
    tasks = loop["root"] / f"{name}_tasks.jsonl"
    write_jsonl(tasks, [task(t) for t in texts])
    record = {
        "tasks": tasks_info(loop["heldout"], len(texts), None),
        "model": model_info(str(model) if model else "base"),
    }
    write_collect_record(path, record)
    return str(path)


def test_compare_warns_when_the_candidate_was_trained_on_evaluated_prompts(
    loop: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base = side(loop, "base_eval", loop["base"], HELDOUT, 0.0)
    leaky = side(loop, "leaky_eval", loop["round2"], HELDOUT, 1.0)
    result = compare([base], [leaky])
    warned = [w for w in result["warnings"] if "not held-out" in w]
    # round2 was trained on v2 (clean), but descends from a model trained on v1, which holds them all.
    assert warned == [
        f"the candidate's model {loop['round2']} descends from {loop['leaky'].resolve()}, trained on release "
        f"{loop['v1'].resolve()}, which holds 6 of the 6 evaluated prompts: its scores on them are not "
        "held-out (build releases with --exclude-tasks HELDOUT.jsonl)"
    ]
    models = result["candidate"]["provenance"]["models"]
    assert [t["release"]["version"] for t in models[0]["trained_on"]] == ["v2", "v1"]
    assert main(["compare", base, leaky]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        f"candidate: model {loop['round2']}, trained on release {loop['v2'].resolve()} (manifest sha256"
        in out
    )
    assert "after 1 earlier round(s)" in out
    assert f"baseline: model {loop['base']} (no lineage" in out
    assert "which holds 6 of the 6 evaluated prompts" in out


def test_a_model_trained_on_a_clean_release_draws_no_warning(loop: dict[str, Path]) -> None:
    result = compare(
        [side(loop, "b", loop["base"], HELDOUT, 0.0)], [side(loop, "c", loop["clean"], HELDOUT, 1.0)]
    )
    assert not [w for w in result["warnings"] if "evaluated prompts" in w]
    release = result["candidate"]["provenance"]["models"][0]["trained_on"][0]["release"]
    assert release["version"] == "v2" and release["exclude_tasks"] == str(loop["heldout"])


def test_different_task_sets_are_refused_unless_allowed(loop: dict[str, Path]) -> None:
    base = side(loop, "b2", loop["base"], HELDOUT, 0.0)
    other = loop["root"] / "other.jsonl"
    write_jsonl(other, rollouts_on(HELDOUT, 1.0))
    record = {
        "tasks": tasks_info(loop["root"] / "rollouts.jsonl", len(HELDOUT), None),
        "model": model_info("x"),
    }
    write_collect_record(other, record)
    with pytest.raises(RollforgeError, match="the two sides ran different task sets: the baseline ran"):
        compare([base], [str(other)])  # same prompts, but the records name different tasks files
    allowed = compare([base], [str(other)], CompareOptions(allow_different_tasks=True))
    assert allowed["n_paired"] == len(HELDOUT)
    assert any(w.startswith("different task sets (--allow-different-tasks)") for w in allowed["warnings"])


def test_compare_catches_a_lightly_edited_copy_in_the_training_data(tmp_path: Path) -> None:
    """A lineage made by hand: the model was trained on a file holding an evaluated problem, reworded a little
    and under another id; the n-gram rule of rollforge.decontam finds it."""
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [task(p) for p in PROBLEMS[:2]])
    train_file = tmp_path / "train.jsonl"
    edited = PROBLEMS[0].replace("sixty", "seventy").upper()
    rows = [
        {
            "messages": [user_msg(edited), {"role": "assistant", "content": "noon"}],
            "prompt_id": "0123456789abcdef",
        },
        {
            "messages": [user_msg(PROBLEMS[2]), {"role": "assistant", "content": "many"}],
            "prompt_id": "fedcba9876543210",
        },
    ]
    write_jsonl(train_file, rows)
    model = tmp_path / "model"
    model.mkdir()
    lineage = {"kind": "rollforge.lineage", "model": str(model), "release": None,
               "data": {"train_file": str(train_file)}, "base_model": {"name": "base", "path": None, "lineage": None}}  # fmt: skip
    (model / "lineage.json").write_text(json.dumps(lineage))
    sides = []
    for name, who in (("before", "base"), ("after", str(model))):
        path = tmp_path / f"{name}.jsonl"
        write_jsonl(path, [rollout([user(p)], [answer("x")], 0.0) for p in PROBLEMS[:2]])
        write_collect_record(path, {"tasks": tasks_info(tasks, 2, None), "model": model_info(who)})
        sides.append(str(path))
    result = compare([sides[0]], [sides[1]], CompareOptions(allow_different_tasks=False))
    assert [w for w in result["warnings"] if "not held-out" in w] == [
        f"the candidate's model {model} descends from {model}, trained on data {train_file}, which holds 0 of "
        "the 2 evaluated prompts and 1 more prompts sharing a 13-word run with them: its scores on them are "
        "not held-out (build releases with --exclude-tasks HELDOUT.jsonl)"
    ]
    train_file.unlink()  # the data is gone: said, not skipped silently
    assert (
        f"cannot check data {train_file} for evaluated prompts: {train_file} cannot be read"
        in compare([sides[0]], [sides[1]])["warnings"]
    )
