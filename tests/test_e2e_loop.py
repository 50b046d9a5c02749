"""The whole offline loop, offline on CPU: build -> train -> serve (transformers serve) -> collect -> compare.

The model is a tiny random one built in the test, so the rewards are ~0 on both sides: the test proves the
loop works end to end (real trainer, real OpenAI-compatible server, NeMo Gym-format rollouts, paired
statistics), not that the model improved.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rollforge.cli.main import main
from rollforge.example import heldout_tasks, write_heldout_tasks
from rollforge.io.read import read_rollouts
from rollforge.rollout import Rollout

pytestmark = pytest.mark.slow
pytest.importorskip("trl")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def transformers_cli() -> str:
    found = shutil.which("transformers", path=str(Path(sys.executable).parent))
    if not found:
        pytest.skip("the `transformers` command is not installed (pip install 'rollforge[train]')")
    return found


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    """Start `transformers serve MODEL` on a loopback port; stop every server at teardown, even on failure."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(model: Path) -> str:
        port = free_port()
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        log = open(tmp_path / f"serve-{port}.log", "wb")  # noqa: SIM115 (closed with the process)
        cmd = [
            transformers_cli(),
            "serve",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--device",
            "cpu",
        ]
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
        deadline = time.time() + 180
        while time.time() < deadline:
            if procs[-1].poll() is not None:
                raise AssertionError((tmp_path / f"serve-{port}.log").read_text()[-3000:])
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return f"http://127.0.0.1:{port}/v1"
            except httpx.HTTPError:
                time.sleep(0.5)
        raise AssertionError("transformers serve did not become ready in 180 s")

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_heldout_tasks_are_not_training_prompts(examples_dir: Path) -> None:
    texts = {json.dumps(t["responses_create_params"]["input"]) for t in heldout_tasks(50)}
    assert len(texts) == 50
    corpus = (examples_dir / "math_reasoning.jsonl").read_text()
    assert not any(json.loads(text)[0]["content"] in corpus for text in texts)


def test_build_train_serve_collect_compare(tmp_path: Path, examples_dir: Path, serve, capsys) -> None:  # type: ignore[no-untyped-def]
    from rollforge.tiny import build_tiny_model

    base = build_tiny_model(tmp_path / "base")
    assert main(["build", str(examples_dir), "-o", str(tmp_path / "releases"), "--quiet", "--json"]) == 0
    capsys.readouterr()
    run = tmp_path / "run"
    args = ["train", "sft", "--model", str(base), "--data", str(tmp_path / "releases" / "v1"), "-o", str(run),
            "--max-steps", "40", "--lr", "3e-3", "--batch-size", "4", "--max-length", "768", "--json"]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    losses = [step["loss"] for step in metrics["log"]]
    assert len(losses) >= 5
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first, f"loss did not go down: {first:.3f} -> {last:.3f}"

    tasks = tmp_path / "heldout.jsonl"
    write_heldout_tasks(tasks, count=6)
    for name, model in (("baseline", base), ("candidate", run)):
        url = serve(model)
        code = main(["collect", str(tasks), "--base-url", url, "--model", str(model), "--verifier", "math",
                     "--num-repeats", "2", "--max-tokens", "16", "--concurrency", "2", "-o",
                     str(tmp_path / f"{name}.jsonl"), "--json"])  # fmt: skip
        assert code == 0, capsys.readouterr()
        summary = json.loads(capsys.readouterr().out)
        assert summary["written"] == 12 and summary["failed"] == 0
        rollouts = list(read_rollouts([str(tmp_path / f"{name}.jsonl")]))
        assert len(rollouts) == 12 and all(isinstance(r, Rollout) for r in rollouts)

    assert (
        main(["compare", str(tmp_path / "baseline.jsonl"), str(tmp_path / "candidate.jsonl"), "--json"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    for key in ("mean_reward", "success_rate"):
        assert isinstance(result["baseline"][key], float) and isinstance(result["candidate"][key], float)
    assert isinstance(result["delta"]["mean_reward"], float)
    low, high = result["delta"]["ci95"]
    assert low <= result["delta"]["mean_reward"] <= high
    assert result["n_paired"] == 6
