"""KTO: TRL's unpaired preference rows for runs with one rollout per prompt. ``rollforge kto`` labels every
rollout that passes the quality filters (successes desirable, failures below --undesirable-below
undesirable), accounts for every line, and a release's ``kto`` config loads with ``datasets`` and sets
TRL's KTO weights as TRL's own check wants them. The real NeMo Gym files train with KTOTrainer."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from gym_rollouts import answer, call, read_jsonl, result, rollout, tool, user, write_jsonl

import rollforge
from rollforge.build.recipe import make_recipe
from rollforge.build.release import build
from rollforge.cli.main import main
from rollforge.export.kto import balanced_weights
from rollforge.tiny import build_tiny_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


def tool_rollout(n: int, reward: float, **fields: Any) -> dict[str, Any]:
    steps = [call(f"c{n}", "lookup", q=f"x{n}"), result(f"c{n}", f"found {n}"), answer(f"ANSWER {n}")]
    return rollout([user(f"QUESTION {n}?")], steps, reward, tools=[tool("lookup", "q")], **fields)


def rollouts(tmp_path: Path) -> str:
    rows = [
        tool_rollout(0, 1.0),
        tool_rollout(1, 0.0),
        tool_rollout(2, 0.5),  # a failure (success is reward >= 1) above --undesirable-below 0.3
        tool_rollout(3, 1.0, truncated=True),  # a quality filter drops it: no row, whatever its reward
        rollout("QUESTION 4?", [answer("ANSWER 4")], 0.0),
    ]
    path = Path(write_jsonl(tmp_path / "r.jsonl", rows))
    with path.open("a") as fh:
        fh.write("{not json\n")
    return str(path)


def test_kto_labels_every_kept_rollout_and_accounts_for_every_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kto.jsonl"
    assert main(["kto", rollouts(tmp_path), "-o", str(out), "--json", "--quiet"]) == 0
    acc = json.loads(capsys.readouterr().out)
    rows = read_jsonl(out)
    assert [(r["reward"], r["label"]) for r in rows] == [
        (1.0, True),
        (0.0, False),
        (0.5, False),
        (0.0, False),
    ]
    assert acc["written"] == 4 and acc["desirable"] == 1 and acc["undesirable"] == 3
    assert acc["filtered"] == {"truncated": 1} and sum(acc["rejected"].values()) == 1
    assert acc["lines"] == acc["written"] + sum(acc["filtered"].values()) + sum(acc["rejected"].values())
    first = rows[0]
    assert first["prompt"] == [{"role": "user", "content": "QUESTION 0?"}]
    roles = [m["role"] for m in first["completion"]]
    assert roles == ["assistant", "tool", "assistant"] and first["completion"][-1]["content"] == "ANSWER 0"
    assert first["completion"][0]["tool_calls"][0]["function"]["arguments"] == {"q": "x0"}
    assert json.loads(first["tools"])[0]["function"]["name"] == "lookup"


def test_undesirable_below_leaves_the_middle_unlabelled_and_counted(tmp_path: Path) -> None:
    acc = rollforge.kto(rollouts(tmp_path), tmp_path / "kto.jsonl", undesirable_below=0.3, workers=1)
    rows = read_jsonl(tmp_path / "kto.jsonl")
    assert [(r["reward"], r["label"]) for r in rows] == [(1.0, True), (0.0, False), (0.0, False)]
    assert acc["filtered"] == {"between_labels": 1, "truncated": 1}
    assert acc["label_rule"] == "desirable: reward >= 1; undesirable: not a success and reward < 0.3"
    assert acc["lines"] == acc["written"] + sum(acc["filtered"].values()) + sum(acc["rejected"].values())


def test_the_success_definition_decides_the_label(tmp_path: Path) -> None:
    acc = rollforge.kto(rollouts(tmp_path), tmp_path / "kto.jsonl", success_threshold=0.5, workers=1)
    assert [r["label"] for r in read_jsonl(tmp_path / "kto.jsonl")] == [True, False, True, False]
    assert (acc["desirable"], acc["undesirable"]) == (2, 2)


def test_each_row_names_its_environment_whose_own_success_decides_the_label(tmp_path: Path) -> None:
    """A rollout's environment (its file's stem here) is the ``env`` column, and a per-environment success
    threshold labels that environment's rows: 0.5 is a success on ``easy`` only."""
    easy = write_jsonl(tmp_path / "easy.jsonl", [tool_rollout(0, 0.5), tool_rollout(1, 0.0)])
    hard = write_jsonl(tmp_path / "hard.jsonl", [tool_rollout(2, 0.5), tool_rollout(3, 1.0)])
    out = tmp_path / "kto.jsonl"
    rollforge.kto([easy, hard], out, environments={"easy": {"success_threshold": 0.5}}, workers=1)
    rows = {(r["env"], r["reward"]): r["label"] for r in read_jsonl(out)}
    assert rows == {("easy", 0.5): True, ("easy", 0.0): False, ("hard", 0.5): False, ("hard", 1.0): True}


def test_one_label_only_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kto", rollouts(tmp_path), "-o", str(tmp_path / "k.jsonl"), "--success-only"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: no undesirable rows: KTO learns from both labels" in err


@pytest.mark.parametrize(
    "counts", [(1, 1), (1, 7), (7, 1), (48, 51), (56, 54), (3, 1000), (1000, 3), (99, 100)]
)
def test_weights_follow_trls_guidance(counts: tuple[int, int]) -> None:
    desirable, undesirable = counts
    d_weight, u_weight = balanced_weights(desirable, undesirable)
    assert 1 <= d_weight * desirable / (u_weight * undesirable) <= 4 / 3
    assert min(d_weight, u_weight) == 1.0


# --- releases -------------------------------------------------------------------------------------------------


def one_rollout_per_prompt(tmp_path: Path, n: int = 24) -> str:
    rows = [tool_rollout(i, 1.0 if i % 3 == 0 else 0.0) for i in range(n)]
    return write_jsonl(tmp_path / "one-per-prompt.jsonl", rows)


def test_a_release_with_kto_true_has_a_kto_config_trl_loads(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    from trl.scripts import kto as trl_kto

    recipe = {"inputs": [one_rollout_per_prompt(tmp_path)], "output": str(tmp_path / "rel"), "kto": True}
    release = build(make_recipe({**recipe, "workers": 1, "val_fraction": 0.25}))
    kto = release.manifest["accounting"]["kto"]
    assert kto["ignored_filters"] == ["success_only"]  # the release's success_only shapes SFT, not KTO
    assert kto["written"] == 24 and kto["desirable"] == 8 and kto["undesirable"] == 16
    assert kto["train"] + kto["validation"] == 24
    assert release.manifest["accounting"]["sft"]["written"] == 8  # SFT keeps successes only, as before
    config = release.path / "trainer-configs" / "trl_kto.yaml"
    args = ["--config", str(config), "--model_name_or_path", "unused", "--output_dir", str(tmp_path / "o")]
    args += ["--bf16", "false"]  # no GPU here
    script, training, _, _ = trl_kto.make_parser().parse_args_and_config(args, fail_with_unknown_args=False)
    data = datasets.load_dataset(script.dataset_name, script.dataset_config, cache_dir=str(tmp_path / "hf"))
    train = data[script.dataset_train_split]
    assert len(train) == kto["train"] and len(data[script.dataset_test_split]) == kto["validation"]
    desirable = sum(train["label"])
    undesirable = len(train) - desirable
    assert (desirable, undesirable) == (
        kto["labels"]["train"]["desirable"],
        kto["labels"]["train"]["undesirable"],
    )
    ratio = training.desirable_weight * desirable / (training.undesirable_weight * undesirable)
    assert 1 <= ratio <= 4 / 3
    assert training.per_device_train_batch_size >= 2  # KTO's KL term needs two rows a batch
    assert training.max_length == release.manifest["sequence_lengths"]["kto"]["tokens"]
    card = (release.path / "README.md").read_text()
    assert "config_name: kto" in card and "| **KTO rows** (train / validation) |" in card


def test_a_release_whose_train_split_has_one_label_gets_no_kto_config(tmp_path: Path) -> None:
    rows = [tool_rollout(i, 1.0) for i in range(4)]
    recipe = {
        "inputs": [write_jsonl(tmp_path / "r.jsonl", rows)],
        "output": str(tmp_path / "rel"),
        "kto": True,
    }
    release = build(make_recipe({**recipe, "workers": 1}))
    configs = release.path / "trainer-configs"
    assert not (configs / "trl_kto.yaml").exists()
    assert "no KTO configs: the train split has no undesirable rows" in (configs / "README.md").read_text()


# --- the real files, through TRL's KTOTrainer -------------------------------------------------------------------


@pytest.mark.slow
def test_kto_on_the_real_files_trains_with_ktotrainer(
    shared_rollouts: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl import KTOConfig, KTOTrainer

    out = tmp_path / "kto.jsonl"
    acc = rollforge.kto(shared_rollouts, out, workers=1)
    sft = rollforge.sft(shared_rollouts, tmp_path / "sft.jsonl", workers=1)  # the same quality filters
    assert acc["written"] == sft["written"] > 0  # a row for every rollout that passes the quality filters
    assert acc["desirable"] > 0 and acc["undesirable"] > 0
    assert acc["lines"] == acc["written"] + sum(acc["filtered"].values()) + sum(acc["rejected"].values())

    corpus = [line for line in out.read_text().splitlines()[:40]]
    tiny = build_tiny_model(tmp_path / "tiny", vocab_corpus=corpus)
    data = load_dataset("json", data_files=str(out), split="train")
    assert sum(data["label"]) == acc["desirable"]
    d_weight, u_weight = balanced_weights(acc["desirable"], acc["undesirable"])
    config = KTOConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=2,
        max_length=None,  # TRL drops a row whose prompt fills max_length: keep them all
        learning_rate=1e-4,
        desirable_weight=d_weight,
        undesirable_weight=u_weight,
        logging_steps=1,
        bf16=False,
        report_to="none",
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    with caplog.at_level(logging.WARNING):
        trainer = KTOTrainer(model=str(tiny), args=config, train_dataset=data, processing_class=tokenizer)
    assert "don't seem to be in an ideal range" not in caplog.text  # TRL's own check of the weights
    output = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert output.global_step == 2 and len(losses) == 2 and all(math.isfinite(x) for x in losses)
