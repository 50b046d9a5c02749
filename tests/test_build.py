"""rollforge build: recipe validation, the release layout, loading the released configs, reproducibility,
atomicity (a killed build leaves no version), and an accounting that adds up and matches the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import RELEASE_DATA_FILES

from rollforge.build.recipe import load_recipe, make_recipe
from rollforge.build.release import build
from rollforge.cli.main import main
from rollforge.errors import RollforgeError


@pytest.fixture(scope="module")
def release(examples_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("releases")
    return build(make_recipe({"inputs": [str(examples_dir)], "output": str(out), "workers": 2}))


def write_recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rollforge.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("inputs: [x]\noutput: out\nmin_rewad: 0.5\n", "rollforge.yaml: unknown key 'min_rewad' (did you mean 'min_reward'?)"),
        ("inputs: [x]\noutput: out\nfoo: 1\n", "rollforge.yaml: unknown key 'foo' (see `rollforge init` for every key)"),
        ("inputs: [x]\noutput: out\nmin_reward: high\n", "rollforge.yaml: 'min_reward': Input should be a valid number, unable to parse string as a number (got 'high')"),
        ("inputs: [x]\noutput: out\nval_fraction: 1.5\n", "rollforge.yaml: 'val_fraction': Input should be less than 1 (got 1.5)"),
        ("inputs: [x]\noutput: out\npairing: worst\n", "rollforge.yaml: 'pairing': Input should be 'best-worst', 'best-random' or 'all' (got 'worst')"),
        ("output: out\n", "rollforge.yaml: 'inputs' is required (set it: rollouts files, directories or globs)"),
        ("inputs: [x]\n", "rollforge.yaml: 'output' is required (set it: the releases directory; each build adds a version under it)"),
        ("inputs: [missing/]\noutput: out\n", "rollforge.yaml: 'inputs': input '{tmp}/missing' does not exist: fix the path or remove it (got ['{tmp}/missing'])"),
        ("inputs: [x]\noutput: out\nmax_tokens: 10\n", "rollforge.yaml: 'max_tokens': needs `tokenizer:` too: set it or drop max_tokens (got 10)"),
        ("- just\n- a list\n", "rollforge.yaml: a recipe is a mapping of keys to values, got a list"),
        ("inputs: [x\n", "is not valid YAML"),
    ],
)  # fmt: skip
def test_recipe_errors_name_the_key_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "x").mkdir()
    path = write_recipe(tmp_path, text)
    with pytest.raises(RollforgeError) as err:
        load_recipe(path)
    expected = message.replace("{tmp}", str(tmp_path)).replace("rollforge.yaml", str(path))
    assert expected in str(err.value)


def test_max_tokens_with_a_tokenizer_is_valid_in_either_order(tmp_path: Path) -> None:
    """A recipe once validated max_tokens before tokenizer (pydantic checks fields in order), so max_tokens
    failed even with a tokenizer; the order of the keys must not matter."""
    for text in ("max_tokens: 10\ntokenizer: tok\n", "tokenizer: tok\nmax_tokens: 10\n"):
        recipe = load_recipe(write_recipe(tmp_path, "inputs: [.]\noutput: out\n" + text))
        assert (recipe.max_tokens, recipe.tokenizer) == (10, "tok")


def test_recipe_error_is_one_line_on_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_recipe(tmp_path, "inputs: [.]\noutput: out\nmin_rewad: 1\n")
    assert main(["build", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key 'min_rewad'" in err and "Traceback" not in err


def test_init_writes_a_recipe_that_builds(tmp_path: Path, examples_dir: Path) -> None:
    path = tmp_path / "rollforge.yaml"
    assert main(["init", str(path)]) == 0
    recipe = yaml.safe_load(path.read_text())
    recipe["inputs"], recipe["output"] = [str(examples_dir)], str(tmp_path / "rel")
    path.write_text(yaml.safe_dump(recipe))
    assert main(["build", str(path), "--quiet", "--json"]) == 0
    assert (tmp_path / "rel" / "v1" / "manifest.json").exists()
    assert main(["init", str(path)]) == 1  # never overwrites without --force


def test_release_layout(release) -> None:
    names = {str(p.relative_to(release.path)) for p in release.path.rglob("*") if p.is_file()}
    expected = {*RELEASE_DATA_FILES, "README.md", "manifest.json", "report.html"}
    expected |= {f"trainer-configs/{n}" for n in ("README.md", "trl_sft.yaml", "trl_dpo.yaml", "nemo_rl_sft.yaml", "nemo_rl_dpo.yaml")}  # fmt: skip
    assert names == expected
    assert not [p for p in release.path.parent.iterdir() if p.name.startswith(".")], "no hidden leftovers"


def test_released_configs_load_with_datasets(release) -> None:
    datasets = pytest.importorskip("datasets")
    sft = datasets.load_dataset(str(release.path), "sft")
    dpo = datasets.load_dataset(str(release.path), "dpo")
    acc = release.manifest["accounting"]
    assert (
        sft["train"].num_rows == acc["sft"]["train"]
        and sft["validation"].num_rows == acc["sft"]["validation"]
    )
    assert dpo["train"].num_rows == acc["dpo"]["train"]
    assert {"messages", "tools", "prompt_id", "rollout_id", "reward", "task_type"} <= set(
        sft["train"].column_names
    )
    assert {"prompt", "chosen", "rejected", "tools", "margin"} <= set(dpo["train"].column_names)


def test_splits_are_by_prompt(release) -> None:
    for kind in ("sft", "dpo"):
        train = {json.loads(line)["prompt_id"] for line in (release.path / kind / "train.jsonl").open()}
        val = {json.loads(line)["prompt_id"] for line in (release.path / kind / "validation.jsonl").open()}
        assert train and val and not train & val


def test_manifest_accounting_adds_up(release, examples_dir: Path) -> None:
    m = release.manifest
    acc = m["accounting"]
    assert acc["lines"] == acc["sft"]["written"] + sum(acc["sft"]["filtered"].values()) + sum(
        acc["rejected"].values()
    )
    assert acc["sft"]["written"] == acc["sft"]["train"] + acc["sft"]["validation"]
    assert acc["dpo"]["prompts"] == sum(acc["dpo"]["unpaired"].values()) + len(
        {json.loads(line)["prompt_id"] for kind in ("train", "validation") for line in (release.path / "dpo" / f"{kind}.jsonl").open()}
    )  # fmt: skip
    assert acc["dpo"]["pairs"] == acc["dpo"]["written"] == acc["dpo"]["train"] + acc["dpo"]["validation"]
    assert sum(i["lines"] for i in m["inputs"]) == acc["lines"]
    for entry in m["outputs"]:
        path = release.path / entry["path"]
        assert entry["rows"] == sum(1 for _ in path.open()), entry["path"]
        assert entry["bytes"] == path.stat().st_size
    rejected = [json.loads(line) for line in (release.path / "rejected.jsonl").open()]
    assert len(rejected) == sum(acc["rejected"].values())
    assert all({"file", "line", "reason", "message"} <= set(r) for r in rejected)
    assert m["recipe"]["seed"] == m["seed"] == 0 and m["rollforge_version"]


def test_report_numbers_match_the_manifest(release) -> None:
    from rollforge.report import report_paths

    data = report_paths([str(release.path)]).summary()
    text = json.dumps(data)
    acc = release.manifest["accounting"]
    for value in (acc["sft"]["train"], acc["sft"]["validation"], acc["dpo"]["train"], acc["lines"]):
        assert str(value) in text
    html = (release.path / "report.html").read_text()
    assert f">{acc['sft']['train']}<" in html or f" {acc['sft']['train']} " in html
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    assert f"<code>{release.path.resolve()}</code>" in html and ".partial" not in html  # names the release
    # the trainer sequence length the configs set, and the rows it cuts, as the manifest records them
    lengths = release.manifest["sequence_lengths"]
    assert {k: v for k, v in lengths.items() if k != "counted"} == data["sequence_lengths"]
    assert "Trainer sequence length" in html and f"{lengths['sft']['tokens']:,} tokens" in html


def test_rebuild_is_byte_identical_and_never_overwrites(release, examples_dir: Path) -> None:
    again = build(
        make_recipe({"inputs": [str(examples_dir)], "output": str(release.path.parent), "workers": 1})
    )
    assert again.path.name == "v2"
    for name in RELEASE_DATA_FILES:
        assert (again.path / name).read_bytes() == (release.path / name).read_bytes(), name
    with pytest.raises(RollforgeError, match="already exists"):
        build(
            make_recipe({"inputs": [str(examples_dir)], "output": str(release.path.parent), "version": "v1"})
        )


def test_a_killed_build_leaves_no_version(examples_dir: Path, tmp_path: Path) -> None:
    """SIGKILL mid-build (while it reads): no version directory appears; the next build cleans the leftovers."""
    big = tmp_path / "big"
    subprocess.run([sys.executable, "-m", "rollforge.cli.main", "example", "-o", str(big), "--rollouts", "20000"],
                   check=True, capture_output=True)  # fmt: skip
    out = tmp_path / "rel"
    proc = subprocess.Popen([sys.executable, "-m", "rollforge.cli.main", "build", str(big), "-o", str(out), "-q",
                             "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and any(out.iterdir())):
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the read of ~150 MB
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "v1").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".v1.")], "the hidden partial build was there"
    build(make_recipe({"inputs": [str(examples_dir)], "output": str(out)}))
    assert sorted(p.name for p in out.iterdir()) == ["v1"]


def test_diff_between_releases(release, examples_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = build(make_recipe({"inputs": [str(examples_dir)], "output": str(release.path.parent), "version": "strict",
                               "min_reward": 1.0, "dpo": False}))  # fmt: skip
    assert main(["diff", str(release.path), str(other.path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["recipe_changes"]["min_reward"] == {"before": None, "after": 1.0}
    assert result["counts"]["lines"]["change"] == 0
    assert result["dpo"]["prompts_removed"] > 0 and result["dpo"]["prompts_added"] == 0
