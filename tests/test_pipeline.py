"""``rollforge sft``, ``dpo`` and ``sample`` end to end, in-process and through the Python API: the --json
accounting, atomic outputs, determinism across workers and chunkings, every input form, and the DPO
invariants (same prompt, margin, a chosen side that passes the filters) on the bundled example corpus."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import random
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gym_rollouts import answer, check_sft_accounting, read_jsonl, rollout, write_jsonl

import rollforge.engine.local
import rollforge.engine.write
import rollforge.io.target
import rollforge.pipeline
from rollforge.cli.main import main
from rollforge.decode import LineDecoder
from rollforge.engine.job import Stratum
from rollforge.filters import FilterOptions
from rollforge.io.read import read_rollouts
from rollforge.pipeline import DpoOptions, SftOptions, make_dpo, make_sample, make_sft
from rollforge.rollout import Rollout


def cli_json(capsys: pytest.CaptureFixture, *argv: str) -> dict[str, Any]:
    """Run the CLI in-process with --json; stdout must be exactly one JSON object."""
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    acc = json.loads(out)
    assert isinstance(acc, dict) and out.strip().count("\n}") == 1
    return acc


def leftovers(directory: Path) -> list[str]:
    """Temporary files a run must never leave behind."""
    return sorted(
        p.name for p in directory.rglob("*") if p.name.endswith(".partial") or "rollforge-spill" in p.name
    )


@pytest.fixture(scope="module")
def corpus_rollouts(examples_dir: Path) -> dict[str, Rollout]:
    return {r.rollout_id: r for r in read_rollouts([str(examples_dir)]) if isinstance(r, Rollout)}


# --- --json accounting on the example corpus -----------------------------------------------------------------


def test_sft_json_accounting_adds_up(
    tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    acc = cli_json(capsys, "sft", str(examples_dir), "-o", str(tmp_path / "sft.jsonl"), "--workers", "1")
    assert {"lines", "written", "filtered", "rejected"} <= set(acc)
    check_sft_accounting(acc)
    assert acc["lines"] == 485  # 160 + 165 + 160 non-blank lines; companion files are not rollouts
    assert acc["rejected"] == {"invalid_json": 2, "no_response": 1, "no_reward": 1, "unsupported_item": 1}
    assert acc["filtered"] == {"not_success": 301, "truncated": 4}  # success-only by default, as build
    assert (acc["success"], acc["success_only"]) == ("reward >= 1", True)
    assert acc["written"] == 175 == len(read_jsonl(tmp_path / "sft.jsonl"))
    acc = cli_json(
        capsys,
        "sft",
        str(examples_dir),
        "-o",
        str(tmp_path / "sft.jsonl"),
        "--workers",
        "1",
        "--success-only",
        "--success-threshold",
        "0.5",
        "--require-tool-use",
        "--min-turns",
        "2",
        "--dedup",
        "exact",
    )
    check_sft_accounting(acc)
    assert set(acc["filtered"]) <= {"truncated", "not_success", "no_tool_use", "too_few_turns", "duplicate"}
    assert acc["written"] == len(read_jsonl(tmp_path / "sft.jsonl")) > 0


def test_a_malformed_prompt_is_rejected_even_when_a_filter_would_drop_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The cheap first look decodes the prompt as conversion does, so a low reward does not hide a bad line."""
    bad_prompt = [{"type": "message", "role": 5, "content": "hi"}]  # a role that is not a string
    rows = [rollout("fine", [answer("ok")], 1.0), rollout(bad_prompt, [answer("ok")], 0.0)]
    path = write_jsonl(tmp_path / "run.jsonl", rows)
    acc = cli_json(capsys, "sft", path, "-o", str(tmp_path / "sft.jsonl"), "--min-reward", "0.5")
    check_sft_accounting(acc)
    assert (acc["written"], acc["filtered"], acc["rejected"]) == (1, {}, {"malformed_item": 1})


def test_dpo_json_accounting_adds_up(
    tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "dpo.jsonl"
    acc = cli_json(capsys, "dpo", str(examples_dir), "-o", str(out), "--workers", "1")
    assert {"lines", "written", "rejected", "prompts", "pairs", "unpaired"} <= set(acc)
    assert acc["lines"] == acc["rollouts"] + sum(acc["rejected"].values()) == 485
    assert acc["prompts"] == acc["pairs"] + sum(
        acc["unpaired"].values()
    )  # best-worst: one pair or one reason
    assert acc["written"] == acc["pairs"] - sum(acc["skipped"].values()) == len(read_jsonl(out))
    # the chosen side is a success by default, as in build: the same 78 pairs
    assert (acc["prompts"], acc["pairs"]) == (120, 78)
    assert acc["unpaired"] == {"all_equal_rewards": 7, "no_eligible_chosen": 35}
    acc = cli_json(capsys, "dpo", str(examples_dir), "-o", str(out), "--workers", "1", "--format", "openai")
    assert (
        acc["written"]
        == acc["pairs"] - acc["skipped"]["not_single_assistant_message"]
        == len(read_jsonl(out))
    )
    acc = cli_json(
        capsys,
        "dpo",
        str(examples_dir),
        "-o",
        str(out),
        "--workers",
        "1",
        "--pairing",
        "all",
        "--max-pairs-per-prompt",
        "2",
        "--min-margin",
        "0.3",
    )
    per_prompt = Counter(r["prompt_id"] for r in read_jsonl(out))
    assert max(per_prompt.values()) == 2 and acc["pairs"] == sum(per_prompt.values())
    assert acc["prompts"] == len(per_prompt) + sum(acc["unpaired"].values())


def test_sample_json(tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture) -> None:
    acc = cli_json(capsys, "sample", str(examples_dir), "-o", str(tmp_path / "s.jsonl"), "--workers", "1")
    assert {"lines", "written", "rejected", "strata"} <= set(acc)
    assert acc["strata"] == {
        "[-inf, 0.5)": {"wanted": 10, "written": 10},
        "[0.5, 0.8)": {"wanted": 20, "written": 20},
        "[0.8, inf)": {"wanted": 20, "written": 20},
    }
    assert acc["written"] == 50 and acc["lines"] == 485


def test_human_output_goes_to_stderr(
    tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["sft", str(examples_dir), "-o", str(tmp_path / "o.jsonl"), "--workers", "1", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "written" in captured.err and "filtered: truncated" in captured.err


# --- atomic outputs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["sft", "dpo"])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failure_mid_write_leaves_nothing(
    tmp_path: Path,
    examples_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    command: str,
    error: type[BaseException],
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "data.jsonl"
    real = rollforge.engine.write.SplitWriters.write
    calls: Counter = Counter()

    def write(self: Any, split: str, row: bytes) -> None:
        calls["rows"] += 1
        if calls["rows"] == 5:
            raise error("disk full")
        real(self, split, row)

    monkeypatch.setattr(rollforge.engine.write.SplitWriters, "write", write)
    argv = [command, str(examples_dir), "-o", str(out), "--workers", "1", "-q"]
    if error is KeyboardInterrupt:
        assert main(argv) == 130
        assert "no partial output was left behind" in capsys.readouterr().err
    else:
        with pytest.raises(RuntimeError, match="disk full"):
            main(argv)
    assert calls["rows"] == 5
    assert list(out_dir.iterdir()) == [] and leftovers(tmp_path) == []
    # an earlier good output stays as it was
    out.write_text("previous\n")
    calls.clear()
    with contextlib.suppress(RuntimeError):
        main(argv)
    assert out.read_text() == "previous\n" and leftovers(tmp_path) == []


def test_sample_and_sharegpt_outputs_are_atomic(
    tmp_path: Path, examples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = rollforge.pipeline.atomic_file

    @contextlib.contextmanager
    def failing(path: Any) -> Iterator[Any]:
        with real(path) as fh:
            fh.write(b'{"half": ')
            raise OSError("disk full")
        yield fh  # pragma: no cover

    monkeypatch.setattr(rollforge.pipeline, "atomic_file", failing)  # dataset_info.json
    monkeypatch.setattr(rollforge.io.target, "atomic_file", failing)  # rows written to a regular file
    with pytest.raises(OSError, match="disk full"):
        make_sample([str(examples_dir)], str(tmp_path / "s.jsonl"), workers=1)
    with pytest.raises(OSError, match="disk full"):  # dataset_info.json is written after the rows
        make_sft(
            [str(examples_dir)], str(tmp_path / "g.jsonl"), options=SftOptions(format="sharegpt"), workers=1
        )
    assert not (tmp_path / "s.jsonl").exists() and not (tmp_path / "dataset_info.json").exists()
    assert leftovers(tmp_path) == []


# --- determinism ---------------------------------------------------------------------------------------------


def run_all(tmp_path: Path, paths: list[str], tag: str, workers: int, seed: int = 3) -> dict[str, bytes]:
    """sft (with seeded balancing and near dedup), dpo (seeded best-random) and sample: the bytes written."""
    out = tmp_path / tag
    make_sft(
        paths,
        str(out / "sft.jsonl"),
        FilterOptions(dedup="near", min_reward=0.1, balance_by="agent_ref.name", max_per_category=100),
        seed=seed,
        workers=workers,
    )
    make_dpo(
        paths, str(out / "dpo.jsonl"), options=DpoOptions(pairing="best-random"), seed=seed, workers=workers
    )
    make_sample(paths, str(out / "sample.jsonl"), seed=seed, workers=workers)
    return {name: (out / name).read_bytes() for name in ("sft.jsonl", "dpo.jsonl", "sample.jsonl")}


def test_same_inputs_same_bytes_across_workers_and_chunks(
    tmp_path: Path, examples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [str(examples_dir)]
    base = run_all(tmp_path, paths, "base", workers=1)
    assert all(base.values())
    assert run_all(tmp_path, paths, "again", workers=1) == base
    assert run_all(tmp_path, paths, "two", workers=2) == base
    planned = []
    real_plan = rollforge.engine.local.plan_chunks

    def plan(sources: Any, size: int) -> Any:
        chunks = real_plan(sources, size)
        planned.append(len(chunks))
        return chunks

    monkeypatch.setattr(rollforge.engine.local, "chunk_size", lambda total, workers: 64 << 10)
    monkeypatch.setattr(rollforge.engine.local, "plan_chunks", plan)
    assert run_all(tmp_path, paths, "chunks", workers=1) == base
    assert min(planned) > 50  # ~4 MB in 64 KiB byte ranges: lines cut at every boundary
    assert run_all(tmp_path, paths, "chunks-two", workers=2) == base
    assert leftovers(tmp_path) == []


def test_a_different_seed_changes_the_random_choices(tmp_path: Path, examples_dir: Path) -> None:
    a = run_all(tmp_path, [str(examples_dir)], "a", workers=1, seed=3)
    b = run_all(tmp_path, [str(examples_dir)], "b", workers=1, seed=4)
    assert a["sample.jsonl"] != b["sample.jsonl"] and a["dpo.jsonl"] != b["dpo.jsonl"]


# --- input forms ---------------------------------------------------------------------------------------------


def test_every_input_form_gives_the_same_output(
    tmp_path: Path, examples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    for name in (
        "tool_calling.jsonl",
        "tool_calling_materialized_inputs.jsonl",
        "tool_calling_failures.jsonl",
        "tool_calling_aggregate_metrics.json",
    ):
        shutil.copy(examples_dir / name, runs / name)
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    shutil.copy(examples_dir / "tool_calling_materialized_inputs.jsonl", zipped)
    with gzip.open(zipped / "tool_calling.jsonl.gz", "wb") as fh:
        fh.write((examples_dir / "tool_calling.jsonl").read_bytes())

    def sft(paths: list[str], tag: str) -> tuple[dict, bytes]:
        out = tmp_path / f"{tag}.jsonl"
        opts = FilterOptions(where="metadata.task_type != 'x'", success_only=False)
        acc = make_sft(paths, str(out), opts, workers=1)
        return acc, out.read_bytes()

    companion = str(runs / "tool_calling_materialized_inputs.jsonl")
    acc, want = sft([str(runs)], "dir")
    assert acc["lines"] == 160 and acc["written"] > 100
    # the companion file restored metadata the rollouts did not echo back
    assert {r["task_type"] for r in read_jsonl(tmp_path / "dir.jsonl")} - {"general"}
    assert sft([str(runs / "tool_calling.jsonl"), companion], "file") == (acc, want)
    assert sft([str(runs / "*.jsonl")], "glob") == (acc, want)
    assert sft([str(zipped)], "gz-dir") == (acc, want)
    gz_companion = str(zipped / "tool_calling_materialized_inputs.jsonl")
    assert sft([str(zipped / "tool_calling.jsonl.gz"), gz_companion], "gz") == (acc, want)
    assert sft([str(runs / "tool_calling.jsonl"), str(runs), companion], "twice") == (acc, want)
    # a file given alone is joined with no companion (documented: companions are found in a directory)
    alone, _ = sft([str(runs / "tool_calling.jsonl")], "alone")
    assert alone == acc
    assert [r["rollout_id"] for r in read_jsonl(tmp_path / "alone.jsonl")] == [
        r["rollout_id"] for r in read_jsonl(tmp_path / "dir.jsonl")
    ]
    # stdin: one stream, no companion file, so no restored metadata: same rollouts, fields aside
    data = (examples_dir / "tool_calling.jsonl").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    piped = make_sft(["-"], str(tmp_path / "stdin.jsonl"), FilterOptions(success_only=False), workers=1)
    assert piped["lines"] == 160
    assert [r["rollout_id"] for r in read_jsonl(tmp_path / "stdin.jsonl")] == [
        r["rollout_id"] for r in read_jsonl(tmp_path / "dir.jsonl")
    ]


def test_missing_inputs_are_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["sft", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl")]) == 1
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["dpo", str(tmp_path / "*.jsonl"), "-o", str(tmp_path / "o.jsonl")]) == 1
    assert "no files match" in capsys.readouterr().err
    assert main(["sft", str(tmp_path), "-o", str(tmp_path / "o.jsonl"), "--workers", "0"]) == 1
    assert not (tmp_path / "o.jsonl").exists()


# --- DPO invariants on the example corpus ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "options"),
    [
        (FilterOptions(), DpoOptions()),
        (FilterOptions(min_reward=0.6, require_tool_use=True), DpoOptions(min_margin=0.3)),
        (
            FilterOptions(success_threshold=0.9, success_only=True, max_turns=3),
            DpoOptions(pairing="all"),
        ),
        (
            FilterOptions(where="agent_ref.name != 'math_agent'", min_task_success_rate=0.25),
            DpoOptions(pairing="best-random", min_margin=0.5),
        ),
        (FilterOptions(drop_truncated=False, min_items=2), DpoOptions(pairing="all", max_pairs_per_prompt=3)),
    ],
)
def test_every_pair_is_one_prompt_over_the_margin_with_a_clean_chosen_side(
    tmp_path: Path,
    examples_dir: Path,
    corpus_rollouts: dict[str, Rollout],
    filters: FilterOptions,
    options: DpoOptions,
) -> None:
    out = tmp_path / "dpo.jsonl"
    acc = make_dpo([str(examples_dir)], str(out), filters, options, workers=1)
    rows = read_jsonl(out)
    assert len(rows) == acc["written"] > 0
    filtering = filters.filtering()
    rollouts = {
        r.rollout_id: r
        for r in read_rollouts([str(examples_dir)], LineDecoder(extra_fields=filters.fields))
        if isinstance(r, Rollout)
    }
    by_prompt = Counter(r.prompt_id for r in rollouts.values())
    wins = Counter(r.prompt_id for r in rollouts.values() if filters.success(r))
    for row in rows:
        chosen, rejected = rollouts[row["chosen_id"]], rollouts[row["rejected_id"]]
        # one prompt, recomputed from the source rollouts
        assert chosen.prompt_id == rejected.prompt_id == row["prompt_id"]
        assert chosen.rollout_id != rejected.rollout_id and chosen.completion != rejected.completion
        # rewards as in the source, over the margin
        assert (row["chosen_reward"], row["rejected_reward"]) == (chosen.reward, rejected.reward)
        assert chosen.reward > rejected.reward
        assert chosen.reward - rejected.reward >= options.min_margin - 1e-9
        # the chosen side passes every quality filter, on the full rollout; the rejected one has a turn
        assert filtering.apply(chosen) is None, row["chosen_id"]
        if filters.min_task_success_rate is not None:
            assert wins[chosen.prompt_id] / by_prompt[chosen.prompt_id] >= filters.min_task_success_rate
        assert rejected.assistant_turns > 0
    if options.max_pairs_per_prompt:
        assert max(Counter(r["prompt_id"] for r in rows).values()) <= options.max_pairs_per_prompt


def test_dpo_pairs_the_unfiltered_group(
    tmp_path: Path, examples_dir: Path, corpus_rollouts: dict[str, Rollout]
) -> None:
    """Filters restrict the chosen side only: the rejected side keeps its low rewards."""
    out = tmp_path / "dpo.jsonl"
    make_dpo([str(examples_dir)], str(out), FilterOptions(min_reward=0.8), workers=1)
    rejected = [corpus_rollouts[r["rejected_id"]].reward for r in read_jsonl(out)]
    assert min(rejected) < 0.8 and rejected.count(0.0) > 10


# --- sample --------------------------------------------------------------------------------------------------


def strata_rows() -> list[dict[str, Any]]:
    rewards = [0.1] * 3 + [0.6] * 25 + [0.9] * 5 + [1.0] * 2
    rows = [rollout(f"Task {i}?", [answer(f"answer {i}")], r, task_id=f"t{i}") for i, r in enumerate(rewards)]
    rows.append(rollout("cut?", [answer("cut")], 0.95, truncated=True, task_id="cut"))  # sampled: for review
    return rows


def test_sample_takes_what_each_stratum_has(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [*strata_rows(), "<PLACEHOLDER ROW>"])
    acc = make_sample([src], str(tmp_path / "s.jsonl"), workers=1)
    assert acc["strata"] == {
        "[-inf, 0.5)": {"wanted": 10, "written": 3},
        "[0.5, 0.8)": {"wanted": 20, "written": 20},
        "[0.8, inf)": {"wanted": 20, "written": 8},
    }
    assert acc["written"] == 31 and acc["rejected"] == {"invalid_json": 1} and acc["lines"] == 37
    lines = (tmp_path / "s.jsonl").read_bytes().splitlines()
    originals = set(Path(src).read_bytes().splitlines())
    assert len(lines) == 31 and all(line in originals for line in lines)  # the original rollout lines
    names = [json.loads(line)["task_id"] for line in lines]
    assert sorted(names[:3]) == ["t0", "t1", "t2"]  # strata in order; inside one, by seeded key
    assert "cut" in names


def test_sample_is_seeded_and_order_independent(tmp_path: Path) -> None:
    rows = strata_rows()
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    other = write_jsonl(tmp_path / "shuffled.jsonl", shuffled)
    strata = (Stratum(-float("inf"), 0.8, 6), Stratum(0.8, float("inf"), 2))

    def sample(path: str, seed: int) -> bytes:
        out = tmp_path / "s.jsonl"
        make_sample([path], str(out), strata, seed=seed, workers=1)
        return out.read_bytes()

    assert sample(src, 5) == sample(other, 5)  # same sample, same order
    assert sample(src, 5) != sample(src, 6)
    picked = [json.loads(line)["task_id"] for line in sample(src, 5).splitlines()]
    assert len(picked) == 8 and picked[:6] != ["t0", "t1", "t2", "t3", "t4", "t5"]  # seeded, not first-N


@pytest.mark.parametrize(
    ("spec", "strata"),
    [
        ("0:20,1:20,inf:10", [(-float("inf"), 0.0, 20), (0.0, 1.0, 20), (1.0, float("inf"), 10)]),
        ("0.5:3", [(-float("inf"), 0.5, 3)]),
    ],
)
def test_strata_flag(tmp_path: Path, capsys: pytest.CaptureFixture, spec: str, strata: list[tuple]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", strata_rows())
    acc = cli_json(capsys, "sample", src, "-o", str(tmp_path / "s.jsonl"), "--strata", spec, "--workers", "1")
    assert list(acc["strata"]) == [Stratum(low, high, n).name for low, high, n in strata]
    assert [v["wanted"] for v in acc["strata"].values()] == [n for *_, n in strata]
    holds = [sum(Stratum(low, high, n).holds(r["reward"]) for r in strata_rows()) for low, high, n in strata]
    assert [v["written"] for v in acc["strata"].values()] == [
        min(h, n) for h, (*_, n) in zip(holds, strata, strict=True)
    ]


@pytest.mark.parametrize("spec", ["0.8:10,0.5:5", "0.5", "a:1", "0.5:x", "0.5:10,0.5:3"])
def test_bad_strata_are_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture, spec: str) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", strata_rows())
    assert main(["sample", src, "-o", str(tmp_path / "s.jsonl"), "--strata", spec]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rollforge: error: --strata") and "e.g. --strata" in err
    assert not (tmp_path / "s.jsonl").exists()


def test_python_api_matches_the_cli(
    tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    cli = cli_json(
        capsys,
        "sft",
        str(examples_dir),
        "-o",
        str(tmp_path / "cli.jsonl"),
        "--workers",
        "1",
        "--min-reward",
        "0.5",
        "--format",
        "openai",
        "--seed",
        "9",
    )
    api = make_sft(
        [str(examples_dir)],
        str(tmp_path / "api.jsonl"),
        FilterOptions(min_reward=0.5),
        SftOptions(format="openai"),
        seed=9,
        workers=1,
    )
    assert cli == api
    assert (tmp_path / "cli.jsonl").read_bytes() == (tmp_path / "api.jsonl").read_bytes()
