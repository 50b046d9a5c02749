"""``rollforge report`` and ``report_paths``: release directories, released JSONL files and rollouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollforge.cli.main import main
from rollforge.errors import RollforgeError
from rollforge.pipeline import take_inventory
from rollforge.report import report_paths

EXAMPLES = str(Path(__file__).resolve().parents[1] / "examples" / "rollouts")


def sft_row(i: int) -> dict:
    return {
        "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"answer {i}"}],
        "tools": "[]", "prompt_id": f"p{i}", "rollout_id": f"r{i}", "reward": 1.0, "task_type": "math",
    }  # fmt: skip


def dpo_row(i: int) -> dict:
    return {
        "prompt": [{"role": "user", "content": f"q{i}"}],
        "chosen": [{"role": "assistant", "content": "right"}], "rejected": [{"role": "assistant", "content": "wrong"}],
        "tools": "[]", "chosen_reward": 1.0, "rejected_reward": 0.0, "margin": 1.0, "prompt_id": f"p{i}",
    }  # fmt: skip


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_release(root: Path, sft_train: int = 3, manifest_train: int = 3) -> Path:
    release = root / "v1"
    write_jsonl(release / "sft" / "train.jsonl", [sft_row(i) for i in range(sft_train)])
    write_jsonl(release / "sft" / "validation.jsonl", [sft_row(10)])
    write_jsonl(release / "dpo" / "train.jsonl", [dpo_row(i) for i in range(2)])
    write_jsonl(release / "dpo" / "validation.jsonl", [])
    write_jsonl(release / "review" / "sample.jsonl", [sft_row(i) for i in range(5)])  # must not be counted
    accounting = {
        "lines": 20, "rollouts": 19, "rejected": {"invalid_json": 1},
        "sft": {"written": manifest_train + 1, "train": manifest_train, "validation": 1, "filtered": {"below_min_reward": 15}},
        "dpo": {"prompts": 5, "pairs": 2, "train": 2, "validation": 0, "unpaired": {"all_equal_rewards": 3}},
        "sample": {"rows": 5},
    }  # fmt: skip
    (release / "manifest.json").write_text(
        json.dumps({"rollforge_version": "0.1.0", "accounting": accounting})
    )
    return release


def test_release_directory(tmp_path):
    data = report_paths([str(make_release(tmp_path))])
    assert dict(data.sft.rows_by_split) == {"train": 3, "validation": 1}
    assert dict(data.dpo.pairs_by_split) == {"train": 2}
    assert data.splits == {
        "train": "sft/train.jsonl, dpo/train.jsonl",
        "validation": "sft/validation.jsonl, dpo/validation.jsonl",
    }
    assert data.accounting and data.accounting["lines"] == 20
    status = {c.name: c.status for c in data.checks}
    assert status["manifest"] == "pass" and status["validation"] == "warn"  # DPO validation split is empty
    assert status["leakage"] == "pass"


def test_release_whose_files_disagree_with_the_manifest(tmp_path):
    data = report_paths([str(make_release(tmp_path, sft_train=2, manifest_train=3))])
    check = next(c for c in data.checks if c.name == "manifest")
    assert check.status == "warn" and check.detail == "train: manifest 3 SFT rows, files 2"


def test_released_files_are_detected_by_their_keys(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [sft_row(i) for i in range(4)])
    write_jsonl(tmp_path / "b" / "validation.jsonl", [dpo_row(1)])
    data = report_paths([str(tmp_path / "a.jsonl"), str(tmp_path / "b")])
    assert dict(data.sft.rows_by_split) == {"all": 4}
    assert dict(data.dpo.pairs_by_split) == {"validation": 1}
    assert data.accounting is None and data.manifest is None


def test_rollouts_are_read_as_sft_rows():
    data = report_paths([EXAMPLES])
    inventory = take_inventory([EXAMPLES])
    assert data.sft.rows == inventory["rollouts"]
    assert data.accounting == {
        "lines": inventory["lines"],
        "rollouts": inventory["rollouts"],
        "rejected": {reason: entry["count"] for reason, entry in inventory["rejected_by_reason"].items()},
    }
    assert data.task_types == inventory["task_types"]
    assert data.prompts == inventory["prompts"]
    assert data.sft.truncated == inventory["truncated"] and data.sft.truncation_known == data.sft.rows
    assert data.summary()["sft"]["tool_use_rate"] == inventory["tool_use_rate"]


def test_a_directory_of_releases_is_refused(tmp_path):
    make_release(tmp_path)
    with pytest.raises(RollforgeError, match="holds releases"):
        report_paths([str(tmp_path)])
    with pytest.raises(RollforgeError, match="one release at a time"):
        report_paths([str(tmp_path / "v1"), str(tmp_path / "v1")])


def test_cli_writes_the_page_and_prints_a_summary(tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", EXAMPLES, "-o", str(out), "--max-tokens", "4096"]) == 0
    assert out.read_text(encoding="utf-8").count("data:image/png;base64,") >= 4
    captured = capsys.readouterr()
    assert "pre-training checklist" in captured.out and f"wrote {out}" in captured.err


def test_cli_json(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(make_release(tmp_path)), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["output"] == str(out) and out.exists()
    assert summary["size"]["sft_rows"] == {"train": 3, "validation": 1}
    assert summary["size"]["dpo_pairs"] == {"train": 2, "validation": 0}
    assert summary["tokens"]["method"] == "estimate"
    assert summary["dpo"]["margin"]["quantiles"]["p50"] == 1.0
    assert {c["name"] for c in summary["checks"]} >= {"size", "rewards", "length", "diversity"}
    assert summary["warnings"][0].startswith("Dataset size:")


def test_cli_fail_on_warn_and_bad_arguments(tmp_path, capsys):
    release = str(make_release(tmp_path))
    assert main(["report", release, "-o", str(tmp_path / "r.html"), "--fail-on-warn"]) == 1
    with pytest.raises(SystemExit):
        main(["report", release, "--max-tokens", "0"])
    assert main(["report", str(tmp_path / "missing"), "-o", str(tmp_path / "r.html")]) == 1
    assert "no such file or directory" in capsys.readouterr().err
