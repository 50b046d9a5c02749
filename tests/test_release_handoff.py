"""A release goes to the trainers as it is: ``datasets`` loads each release as itself, and TRL, set up from the
release's own trainer config by TRL's own command-line parser, keeps and cuts exactly the rows the release says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gym_rollouts import answer, call, read_jsonl, result, rollout, tool, write_jsonl

from rollforge.build.recipe import make_recipe
from rollforge.build.release import Release, build
from rollforge.cli.main import main
from rollforge.tiny import build_tiny_model

datasets = pytest.importorskip("datasets")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


def load(release: Path, config: str, cache: Path) -> Any:
    return datasets.load_dataset(str(release), config, cache_dir=str(cache))


def assert_loads_as_itself(release: Path, cache: Path) -> None:
    for config, key in (("sft", "rollout_id"), ("dpo", "chosen_id")):
        loaded = load(release, config, cache)
        for split in ("train", "validation"):
            on_disk = [row[key] for row in read_jsonl(release / config / f"{split}.jsonl")]
            assert loaded[split][key] == on_disk, f"{release} {config}/{split}"


def test_two_releases_named_v1_each_load_their_own_rows(examples_dir: Path, tmp_path: Path) -> None:
    common = {"inputs": [str(examples_dir)], "workers": 1}
    first = build(make_recipe({**common, "output": str(tmp_path / "a")}))
    second = build(make_recipe({**common, "output": str(tmp_path / "b"), "seed": 7, "val_fraction": 0.3}))
    assert first.path.name == second.path.name == "v1"
    cache = tmp_path / "hf-cache"  # one cache, as every run on a machine shares ~/.cache/huggingface
    assert_loads_as_itself(first.path, cache)
    assert_loads_as_itself(second.path, cache)  # before: the first release's rows, silently


def test_same_sizes_different_content_still_load_apart(tmp_path: Path) -> None:
    """Rewards 0.25 and 0.75 print with as many bytes: only the content digest tells these releases apart."""
    releases = []
    for name, reward in (("a", 0.25), ("b", 0.75)):
        rows = [rollout(f"question {i}?", [answer(f"answer {i}")], reward) for i in range(6)]
        source = write_jsonl(tmp_path / f"{name}.jsonl", rows)
        recipe = {"inputs": [source], "output": str(tmp_path / name), "success_threshold": 0.2, "dpo": False,
                  "workers": 1}  # fmt: skip
        releases.append(build(make_recipe(recipe)))
    files = [{o["path"]: (o["rows"], o["bytes"]) for o in r.manifest["outputs"]} for r in releases]
    assert files[0] == files[1]  # same rows and bytes in every file
    cache = tmp_path / "hf-cache"
    for release, reward in zip(releases, (0.25, 0.75), strict=True):
        assert set(load(release.path, "sft", cache)["train"]["reward"]) == {reward}


def test_a_changed_file_fails_to_load_instead_of_loading_other_rows(
    examples_dir: Path, tmp_path: Path
) -> None:
    release = build(
        make_recipe({"inputs": [str(examples_dir)], "output": str(tmp_path), "dpo": False, "workers": 1})
    )
    train = release.path / "sft" / "train.jsonl"
    train.write_text("".join(train.read_text().splitlines(keepends=True)[:-1]))  # one row less
    with pytest.raises(datasets.exceptions.NonMatchingSplitsSizesError):
        load(release.path, "sft", tmp_path / "hf-cache")  # the card's row counts are checked


def test_a_release_without_pairs_has_no_dpo_configs(tmp_path: Path) -> None:
    """One rollout per prompt, as in many real NeMo Gym runs: no pairs, so no DPO config a trainer would
    fail on (NeMo RL's data.train would be an empty file)."""
    rows = [rollout(f"question {i}?", [answer(f"answer {i}")]) for i in range(4)]
    source = write_jsonl(tmp_path / "r.jsonl", rows)
    release = build(make_recipe({"inputs": [source], "output": str(tmp_path / "rel"), "workers": 1}))
    assert release.manifest["accounting"]["dpo"]["pairs"] == 0
    configs = release.path / "trainer-configs"
    assert sorted(p.name for p in configs.iterdir()) == ["README.md", "nemo_rl_sft.yaml", "trl_sft.yaml"]
    assert "no DPO configs: the train split has no DPO rows" in (configs / "README.md").read_text()


def test_rows_calling_undeclared_tools_are_counted_and_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = [call("c1", "lookup", q="x"), result("c1", "found"), answer("done")]
    rows = [
        rollout("undeclared?", steps),  # tools: [] as some NeMo Gym environments write it
        rollout("declared?", steps, tools=[tool("lookup", "q")]),
        rollout("no tools?", [answer("fine")]),
    ]
    source = write_jsonl(tmp_path / "r.jsonl", rows)
    assert main(["build", source, "-o", str(tmp_path / "rel"), "--extra-formats", "openai", "--no-dpo"]) == 0
    assert "warning: 1 rows call a tool their rollout does not declare" in " ".join(
        capsys.readouterr().err.split()
    )
    release = tmp_path / "rel" / "v1"
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["accounting"]["sft"]["export"]["rows_calling_undeclared_tools"] == 1
    assert (
        "**Warning:** 1 rows call a tool their rollout does not declare"
        in (release / "README.md").read_text()
    )
    openai = [
        *read_jsonl(release / "openai" / "sft_train.jsonl"),
        *read_jsonl(release / "openai" / "sft_validation.jsonl"),
    ]
    tool_messages = [m for row in openai for m in row["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 2 and all(
        set(m) == {"role", "tool_call_id", "content"} for m in tool_messages
    )


# --- lengths: TRL's own parser reads the release's config; its own tokenization keeps what the release says ------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, examples_dir: Path) -> Path:
    sample = (examples_dir / "tool_calling.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), vocab_corpus=sample)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory, examples_dir: Path, tiny: Path) -> dict[str, Release]:
    """Releases whose lengths were counted with the model's tokenizer: one with the 99th percentile (no
    --max-tokens), one filtered at --max-tokens."""
    out = tmp_path_factory.mktemp("measured")
    common = {"inputs": [str(examples_dir)], "output": str(out), "tokenizer": str(tiny), "workers": 1}
    return {
        "p99": build(make_recipe({**common, "version": "p99"})),
        "max_tokens": build(make_recipe({**common, "version": "max-tokens", "max_tokens": 2500})),
    }


def trl_setup(release: Release, kind: str, tiny: Path, tmp: Path) -> tuple[Any, Any, Any]:
    """What `trl sft|dpo --config trainer-configs/trl_KIND.yaml` parses and loads: args, train and eval splits."""
    from trl.scripts import dpo, sft

    parser = (sft if kind == "sft" else dpo).make_parser()
    config = release.path / "trainer-configs" / f"trl_{kind}.yaml"
    args = ["--config", str(config), "--model_name_or_path", str(tiny), "--bf16", "false"]
    args += ["--output_dir", str(tmp / "out")]
    script_args, training_args, _, _ = parser.parse_args_and_config(args, fail_with_unknown_args=False)
    data = load(Path(script_args.dataset_name), script_args.dataset_config, tmp / "hf-cache")
    return training_args, data[script_args.dataset_train_split], data[script_args.dataset_test_split]


def full_length(tokenizer: Any, row: dict[str, Any]) -> int:
    ids = tokenizer.apply_chat_template(
        row["messages"], tools=json.loads(row["tools"]), tokenize=True, return_dict=False
    )
    return len(ids)


@pytest.mark.parametrize("rule", ["p99", "max_tokens"])
def test_trl_sft_cuts_exactly_the_rows_the_release_reports(
    measured: dict[str, Release], tiny: Path, tmp_path: Path, rule: str
) -> None:
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    release = measured[rule]
    length = release.manifest["sequence_lengths"]["sft"]
    assert length["rule"] == rule
    args, train, validation = trl_setup(release, "sft", tiny, tmp_path)
    assert args.max_length == length["tokens"]  # before: TRL's default, 1024
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    trainer = SFTTrainer(model=str(tiny), args=args, train_dataset=train, eval_dataset=validation,
                         processing_class=tokenizer)  # fmt: skip
    cut = 0
    for raw, tokenized in ((train, trainer.train_dataset), (validation, trainer.eval_dataset)):
        full = sorted(full_length(tokenizer, row) for row in raw)
        kept = sorted(len(ids) for ids in tokenized["input_ids"])
        cut += len(full) - len(kept) + sum(k < f for k, f in zip(kept, full[: len(kept)], strict=True))
    assert cut == length["cut"]
    assert (cut == 0) == (rule == "max_tokens")


def test_trl_dpo_keeps_every_pair_the_release_says_fits(
    measured: dict[str, Release], tiny: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer
    from trl import DPOTrainer

    release = measured["p99"]
    length = release.manifest["sequence_lengths"]["dpo"]
    args, train, validation = trl_setup(release, "dpo", tiny, tmp_path)
    assert args.max_length == length["tokens"]
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    trainer = DPOTrainer(model=str(tiny), args=args, train_dataset=train, eval_dataset=validation,
                         processing_class=tokenizer)  # fmt: skip
    over = 0
    for raw, tokenized in ((train, trainer.train_dataset), (validation, trainer.eval_dataset)):
        assert tokenized.num_rows == raw.num_rows  # before: pairs whose prompt fills 1024 tokens were dropped
        over += sum(
            len(r["prompt_ids"]) + max(len(r["chosen_ids"]), len(r["rejected_ids"])) > args.max_length
            for r in tokenized
        )  # the collator truncates these
    assert over == length["cut"]
