"""The whole loop, offline on CPU: build -> train -> serve (`transformers serve`) -> collect -> compare.

The model is a tiny random one built in the test, so the rewards are ~0 on both sides: the test proves that
the loop works end to end (the real trainer, a real OpenAI-compatible server, NeMo Gym-format rollouts read
back with no rejects, paired statistics), not that the model got better. docs/loop.md shows the same loop.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from rollforge.cli.main import main
from rollforge.collect.tasks import load_tasks
from rollforge.errors import RollforgeError
from rollforge.example import heldout_tasks, write_heldout_tasks
from rollforge.io.read import read_rollouts
from rollforge.loop.serve import transformers_serve
from rollforge.rollout import Rollout

HELDOUT = 6
REPEATS = 2


# --- held-out tasks (fast) ---------------------------------------------------------------------------------


def prompt_ids(rows: list[dict[str, Any]], tmp_path: Path) -> list[str]:
    """rollforge's own prompt_id of each task row: the row with a one-message response, read back."""
    path = tmp_path / "as_rollouts.jsonl"
    answer = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "1"}]}
    path.write_bytes(
        b"".join(orjson.dumps({**r, "response": {"output": [answer]}, "reward": 0.0}) + b"\n" for r in rows)
    )
    records = list(read_rollouts([str(path)]))
    assert all(isinstance(r, Rollout) for r in records)
    return [r.prompt_id for r in records]  # type: ignore[union-attr]


def test_heldout_tasks_are_not_training_prompts(examples_dir: Path, tmp_path: Path) -> None:
    held = prompt_ids(heldout_tasks(200), tmp_path)
    assert len(set(held)) == 200  # every task its own prompt
    training = {r.prompt_id for r in read_rollouts([str(examples_dir)]) if isinstance(r, Rollout)}
    assert len(training) == 120 and training.isdisjoint(held)


def test_heldout_tasks_are_collect_input_rows(tmp_path: Path) -> None:
    assert write_heldout_tasks(tmp_path / "t.jsonl", n=5, seed=3) == 5
    rows = load_tasks(str(tmp_path / "t.jsonl"))  # what `rollforge collect` reads
    assert rows == heldout_tasks(5, seed=3) != heldout_tasks(5, seed=4)
    for row in rows:
        assert set(row) == {
            "responses_create_params",
            "expected_answer",
            "task_id",
            "metadata",
        }  # no response
        (message,) = row["responses_create_params"]["input"]
        a, b = map(int, message["content"].removeprefix("Compute ").split(". ")[0].split(" * "))
        assert message["role"] == "user" and row["expected_answer"] == str(a * b)
        assert min(a, b) >= 100 and row["metadata"] == {"task_type": "math"}


def test_example_cli_writes_heldout_tasks_beside_an_unchanged_corpus(
    examples_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = tmp_path / "heldout.jsonl"
    args = ["example", "-o", str(tmp_path / "ex"), "--heldout-tasks", str(tasks), "--heldout-count", "7"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote 7 held-out tasks to {tasks}"
    assert tasks.read_bytes() == b"".join(orjson.dumps(r) + b"\n" for r in heldout_tasks(7))
    for path in examples_dir.iterdir():
        assert (tmp_path / "ex" / path.name).read_bytes() == path.read_bytes(), path.name
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["heldout_tasks"] == {"path": str(tasks), "tasks": 7}


# --- the loop (slow) ---------------------------------------------------------------------------------------


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """``serve(model_dir)`` starts ``transformers serve MODEL_DIR`` on a free loopback port (the server
    ``rollforge iterate`` uses, rollforge.loop.serve) and returns its base URL once /health answers; every
    server is stopped at teardown, also when the test fails."""
    if shutil.which("transformers", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("the `transformers` command is missing: pip install 'rollforge[train]'")
    with contextlib.ExitStack() as servers:

        def start(model: Path) -> str:
            log_path = tmp_path / f"serve-{model.name}.log"
            try:
                return servers.enter_context(transformers_serve(model, log_path))
            except RollforgeError as exc:
                pytest.fail(f"{exc}:\n{log_path.read_text()[-3000:]}")

        yield start


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    return json.loads(captured.out)


@pytest.mark.slow
def test_build_train_serve_collect_compare(
    tmp_path: Path, examples_dir: Path, serve: Callable[[Path], str], capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("trl")
    from rollforge.tiny import build_tiny_model

    base = build_tiny_model(tmp_path / "base")
    release = run_json(capsys, "build", str(examples_dir), "-o", str(tmp_path / "releases"), "--quiet")
    assert Path(release["release"]) == tmp_path / "releases" / "v1"

    # lr and steps picked on the tiny model: the loss falls from ~6.3 to ~3.9, far past any noise.
    run = tmp_path / "run"
    metrics = run_json(capsys, "train", "sft", "--model", str(base), "--data", str(tmp_path / "releases" / "v1"),
                       "-o", str(run), "--max-steps", "40", "--lr", "3e-3", "--batch-size", "4",
                       "--max-length", "768")  # fmt: skip
    losses = [step["loss"] for step in metrics["log"] if "loss" in step]
    assert len(losses) >= 10
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.8 * first, f"the loss did not go down: {first:.3f} -> {last:.3f}"

    tasks = tmp_path / "heldout.jsonl"
    write_heldout_tasks(tasks, n=HELDOUT)
    for name, model in (("baseline", base), ("candidate", run)):
        url = serve(model)
        out = tmp_path / f"{name}.jsonl"
        # The server answers only for the model it was started with, under the name it was given. A random
        # model sometimes opens a <tool_call> it never closes or fills it with text that is not JSON, which
        # transformers serve answers with a 500 or a 400 naming its parser: collect samples those again
        # (short delays keep the test quick).
        summary = run_json(capsys, "collect", str(tasks), "--base-url", url, "--model", str(model),
                           "--verifier", "math", "--num-repeats", str(REPEATS), "--temperature", "1.0",
                           "--max-tokens", "16", "--concurrency", "2", "--max-retries", "6",
                           "--retry-base-delay", "0.1", "-o", str(out))  # fmt: skip
        assert (summary["written"], summary["failed"]) == (HELDOUT * REPEATS, 0)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert {r["response"]["model"] for r in rows} == {str(model)}
        assert all(r["reward"] in (0.0, 1.0) and "is_correct" in r for r in rows)  # scored by math-verify
        inventory = run_json(capsys, "inspect", str(out))
        assert (inventory["lines"], inventory["rollouts"], inventory["rejected"]) == (
            len(rows),
            len(rows),
            [],
        )
        assert inventory["prompts"] == HELDOUT

    result = run_json(capsys, "compare", str(tmp_path / "baseline.jsonl"), str(tmp_path / "candidate.jsonl"))
    for side in ("baseline", "candidate"):
        assert isinstance(result[side]["mean_reward"], float)
        assert isinstance(result[side]["success_rate"], float)
    low, high = result["delta"]["ci95"]
    assert low <= result["delta"]["mean_reward"] <= high
    assert result["n_paired"] == HELDOUT
    assert result["only_baseline"] == result["only_candidate"] == []
    # Lineage: the candidate's collect record names the trained model, whose lineage names the release.
    lineage = json.loads((run / "lineage.json").read_text())
    assert lineage["release"]["path"] == str((tmp_path / "releases" / "v1").resolve())
    assert lineage["base_model"]["path"] == str(base.resolve()) and lineage["base_model"]["lineage"] is None
    (candidate,) = result["candidate"]["provenance"]["models"]
    assert (
        candidate["path"] == str(run.resolve()) and candidate["trained_on"][0]["release"]["version"] == "v1"
    )
    assert result["baseline"]["provenance"]["models"][0]["trained_on"] == []
