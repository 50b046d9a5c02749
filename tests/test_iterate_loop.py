"""The proof that the loop teaches: `rollforge iterate` on the toy task, with fixed seeds (slow).

A tiny model (rollforge.tiny's template, a digit-level tokenizer, 2 layers, hidden 128) is trained from scratch
by `rollforge train sft` on a biased demonstrator's demos (60% of them get the last digit wrong), so the base is
partly competent. Then two rounds of `rollforge iterate`: K samples per training task, success-only SFT rows,
train, evaluate on 256 held-out tasks. The same loop with the rewards shuffled before filtering is the control:
it trains on as many of the model's own rollouts, picked regardless of reward. Asserted: the base's success
rate is between 0.2 and 0.6 (a precondition that fails, never skips: a base that never succeeds gives the loop
nothing to keep), the held-out mean reward rises with a paired 95% CI whose low end is above 0.10, and the real
loop beats the control with a CI above 0. DPO (best-worst pairs from the same samples) runs once, reported as
it comes out. The figures are printed (pytest -s) and written to the test's directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from rollforge.cli.main import main

pytest.importorskip("trl")


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    return json.loads(captured.out)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy task's files and its trained base (`rollforge example --task reverse` + `rollforge train sft`)."""
    import torch

    torch.set_num_threads(1)  # a tiny model trains several times faster on one thread than on two busy ones
    out = tmp_path_factory.mktemp("toy")
    assert main(["example", "--task", "reverse", "-o", str(out), "--json"]) == 0
    started = time.monotonic()
    args = ["train", "sft", "--model", str(out / "untrained"), "--data", str(out / "demos.jsonl"),
            "-o", str(out / "base"), "--config", str(out / "base_config.yaml")]  # fmt: skip
    assert main(args) == 0
    (out / "base_wall_s.txt").write_text(f"{time.monotonic() - started:.1f}\n")
    return out


def heldout(run: Path, round_: int) -> str:
    return str(run / "rounds" / str(round_) / "heldout.jsonl")


def figures(result: dict[str, Any]) -> dict[str, Any]:
    """What the closing note quotes: each round's held-out reward and CI, the total change, wall times."""
    rounds = [
        {
            "round": r["round"],
            "heldout_mean_reward": r["eval"]["mean_reward"],
            "heldout_ci95": r["eval"]["ci95"],
            "data_rows": r.get("build", {}).get("rows"),
            "train_loss": r.get("train", {}).get("train_loss"),
            "wall_s": {
                step: r[step]["wall_s"] for step in ("collect", "build", "train", "eval") if step in r
            },
        }
        for r in result["rounds"]
    ]
    delta = result["total"]["delta"]
    return {
        "rounds": rounds,
        "total": {k: delta[k] for k in ("mean_reward", "ci95", "p_value", "p_value_method")},
    }


def report(toy: Path, name: str, value: Any) -> None:
    """Print a figure (visible with pytest -s) and keep it beside the run."""
    text = json.dumps(value, indent=1)
    (toy / f"figures_{name}.json").write_text(text)
    print(f"\n[{name}] {text}", file=sys.__stdout__, flush=True)


@pytest.mark.slow
def test_the_loop_learns_and_beats_the_control(
    toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = str(toy / "loop.yaml")
    real = run_json(capsys, "iterate", recipe, "-o", str(tmp_path / "sft"))
    base = real["rounds"][0]["eval"]["mean_reward"]  # binary reward: the success rate
    # The precondition: a base that never succeeds gives the loop nothing to keep; one that always succeeds
    # leaves nothing to learn. It fails, never skips: a change that breaks the calibration must be seen.
    assert 0.2 <= base <= 0.6, f"the base's held-out success rate {base:.3f} is outside [0.2, 0.6]"
    total = real["total"]["delta"]
    assert total["ci95"][0] > 0.10, f"the loop did not teach enough: {total}"
    assert real["rounds"][-1]["eval"]["tasks"] == 256

    control = run_json(capsys, "iterate", recipe, "-o", str(tmp_path / "control"), "--control")
    # the same base, seed and tasks: the same round 0, sample for sample
    same = ("mean_reward", "ci95", "rows")
    assert [control["rounds"][0]["eval"][k] for k in same] == [real["rounds"][0]["eval"][k] for k in same]
    assert [r["build"]["control"] for r in control["rounds"][1:]] == [True, True]
    versus = run_json(capsys, "compare", heldout(tmp_path / "control", 2), heldout(tmp_path / "sft", 2))
    assert versus["n_paired"] == 256
    assert versus["delta"]["ci95"][0] > 0, f"the real loop does not beat the control: {versus['delta']}"
    report(toy, "sft", figures(real))
    report(toy, "control", figures(control))
    report(toy, "real_vs_control", {k: versus["delta"][k] for k in ("mean_reward", "ci95", "p_value")})
    report(toy, "base_train_wall_s", float((toy / "base_wall_s.txt").read_text()))
    assert (tmp_path / "sft" / "iterate.md").read_text().count("\n| ") == 4  # the header, rounds 0, 1, 2


@pytest.mark.slow
def test_the_loop_with_dpo_pairs(toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """DPO on best-worst pairs of the same samples: its figures are reported as they come out."""
    result = run_json(capsys, "iterate", str(toy / "loop_dpo.yaml"), "-o", str(tmp_path / "dpo"))
    for record in result["rounds"][1:]:
        pairs = [
            orjson.loads(line)
            for line in Path(record["build"]["release"], "dpo", "train.jsonl").read_bytes().splitlines()
        ]
        assert len(pairs) == record["build"]["rows"] == record["train"]["train_rows"] > 0
        assert all(set(pair) >= {"prompt", "chosen", "rejected"} for pair in pairs)
        assert record["eval"]["tasks"] == 256
    report(toy, "dpo", figures(result))


# --- kill -9 at every step, then resume ----------------------------------------------------------------------

STEPS = ["0/eval", *(f"{n}/{step}" for n in (1, 2) for step in ("collect", "build", "train", "eval", "compare")),
         "2/total"]  # fmt: skip


def small_recipe(toy: Path, tmp_path: Path, tasks: int = 24) -> Path:
    """The toy loop on a few tasks, with a short training run: each step takes a second or two."""
    for name in ("train_tasks", "heldout_tasks"):
        lines = (toy / f"{name}.jsonl").read_bytes().splitlines(keepends=True)
        (tmp_path / f"{name}.jsonl").write_bytes(b"".join(lines[:tasks]))
    recipe = tmp_path / "loop.yaml"
    recipe.write_text(
        f"base_model: {toy / 'base'}\ntrain_tasks: train_tasks.jsonl\nheldout_tasks: heldout_tasks.jsonl\n"
        "output: run\nrounds: 2\nsamples: 4\neval_samples: 4\n"
        "collect: {mode: local, max_tokens: 8, batch_size: 8}\ntrain: {max_steps: 30, batch_size: 8}\n"
    )
    return recipe


def start(recipe: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [sys.executable, "-m", "rollforge.cli.main", "iterate", str(recipe), "--quiet"]
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


def kill_inside(proc: subprocess.Popen[bytes], run: Path, step: str) -> None:
    """SIGKILL ``proc`` while it works on ``step``: once the step's output has begun to appear (collect: a
    few rows; the others: the marker of the step before), before its own marker is written."""
    round_, name = step.split("/")
    here = run / "rounds" / round_
    started = {"eval": here / "heldout.jsonl", "collect": here / "train_rollouts.jsonl"}.get(name)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if (here / f"{name}.done.json").exists():
            break  # too late for this step: the kill lands in a later one, which is tested as well
        if started is not None and started.exists() and started.stat().st_size > 2000:
            break
        if started is None and _previous_done(run, step):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _previous_done(run: Path, step: str) -> bool:
    before = STEPS[STEPS.index(step) - 1]
    round_, name = before.split("/")
    return (run / "rounds" / round_ / f"{name}.done.json").exists()


def markers(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.glob("rounds/*/*.done.json"))}


@pytest.mark.slow
def test_iterate_resumes_after_kill_9_at_each_step(toy: Path, tmp_path: Path) -> None:
    recipe = small_recipe(toy, tmp_path)
    run, log = tmp_path / "run", tmp_path / "iterate.log"
    kept: dict[str, bytes] = {}
    for step in STEPS:
        kill_inside(start(recipe, log), run, step)
        now = markers(run)
        assert {k: now[k] for k in kept} == kept, "a finished step was done again"
        kept = now
    final = start(recipe, log)
    assert final.wait(timeout=900) == 0, log.read_text()[-3000:]
    done = markers(run)
    assert {k: done[k] for k in kept} == kept
    assert len(done) == 1 + 5 + 5 + 1  # round 0 eval, two rounds of five steps, the total
    pids = {orjson.loads(v)["pid"] for v in done.values()}
    assert len(pids) > 3  # the work was spread over the killed runs
    for path, repeats in [
        ("0/heldout", 4),
        ("1/train_rollouts", 4),
        ("1/heldout", 4),
        ("2/train_rollouts", 4),
        ("2/heldout", 4),
    ]:
        rows = [orjson.loads(line) for line in (run / "rounds" / f"{path}.jsonl").read_bytes().splitlines()]
        keys = sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in rows)
        assert keys == [(t, k) for t in range(24) for k in range(repeats)], path  # every row once, none lost
    result = json.loads((run / "iterate.json").read_text())
    assert [r["round"] for r in result["rounds"]] == [0, 1, 2]
    assert all((run / "models" / f"agent_v{n}" / "model.safetensors").is_file() for n in (1, 2))


@pytest.mark.slow
def test_iterate_through_transformers_serve(
    toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default generation: iterate starts `transformers serve` for each model and stops it after the step."""
    import shutil

    if shutil.which("transformers", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("the `transformers` command is missing: pip install 'rollforge[train]'")
    recipe = small_recipe(toy, tmp_path, tasks=4)
    result = run_json(capsys, "iterate", str(recipe), "--serve", "--rounds", "1")
    run = tmp_path / "run"
    for path in ("0/heldout", "1/train_rollouts", "1/heldout"):
        rows = [orjson.loads(line) for line in (run / "rounds" / f"{path}.jsonl").read_bytes().splitlines()]
        assert len(rows) == 16 and all(row["reward"] in (0.0, 1.0) for row in rows)
        models = {row["response"]["model"] for row in rows}  # the server answers under the model's path
        assert models == {str(run / "models" / "agent_v1") if path == "1/heldout" else str(toy / "base")}
        assert (run / "rounds" / f"{path}.serve.log").is_file()
    assert result["rounds"][1]["train"]["steps"] == 30
    served = subprocess.run(["pgrep", "-f", f"transformers serve {run}"], capture_output=True)
    assert served.stdout == b"", "a server was left running"
