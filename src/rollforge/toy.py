"""A toy task a tiny model learns in seconds on a CPU, to prove the loop (``rollforge iterate``) really teaches.

Digit reversal: ``"Reverse: 4821"`` -> ``"1284"``, scored by collect's ``exact`` verifier (reward 1.0 for the
exact reversal, 0.0 otherwise). A *biased demonstrator* writes the demonstrations the base model is trained on
from scratch: it reverses correctly, but in ``wrong_rate`` (60%) of its demonstrations the last digit is wrong.
A model trained on them is partly competent (about 40% success), which is what the loop needs: there are
successes to keep, and room to improve. An earlier task whose base reached only 4% success gained almost
nothing, so the proof checks the base's success rate before it claims anything.

Everything is offline and deterministic: demonstrations, training tasks and held-out tasks come from one
seeded permutation of the 4-digit strings, so the three sets never share a prompt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from rollforge.io.atomic import atomic_file

TASK = "reverse"
DIGITS = 4
VERIFIER = "exact"  # collect's built-in verifier: the last line equals expected_answer


def prompt(number: str) -> str:
    return f"Reverse: {number}"


def task_row(number: str, task_id: str) -> dict[str, Any]:
    """A NeMo Gym dataset row (what ``rollforge collect`` reads): the prompt and the expected answer."""
    return {
        "responses_create_params": {"input": [{"role": "user", "content": prompt(number)}]},
        "expected_answer": number[::-1],
        "task_id": task_id,
        "metadata": {"task_type": TASK},
    }


def demonstrate(number: str, rng: random.Random, wrong_rate: float) -> str:
    """The biased demonstrator's answer: the reversal, with its last digit replaced in ``wrong_rate`` of cases."""
    answer = number[::-1]
    if rng.random() < wrong_rate:
        wrong = rng.choice([d for d in "0123456789" if d != answer[-1]])
        answer = answer[:-1] + wrong
    return answer


def demo_row(number: str, answer: str) -> dict[str, Any]:
    """One SFT row in TRL's conversational format (what ``rollforge train sft --data`` reads)."""
    return {
        "messages": [{"role": "user", "content": prompt(number)}, {"role": "assistant", "content": answer}]
    }


@dataclass(frozen=True)
class ToySets:
    demos: int = 3000
    train_tasks: int = 200
    heldout_tasks: int = 256
    wrong_rate: float = 0.6
    seed: int = 0

    def numbers(self) -> tuple[list[str], list[str], list[str]]:
        """Disjoint demo, training-task and held-out numbers, from one seeded permutation."""
        pool = [f"{n:0{DIGITS}d}" for n in range(10**DIGITS)]
        random.Random(self.seed).shuffle(pool)
        a, b = self.demos, self.demos + self.train_tasks
        if b + self.heldout_tasks > len(pool):
            raise ValueError(f"at most {len(pool)} prompts in all")
        return pool[:a], pool[a:b], pool[b : b + self.heldout_tasks]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")
    return len(rows)


def write_toy(out_dir: str | Path, sets: ToySets | None = None) -> dict[str, Any]:
    """Write ``demos.jsonl`` (SFT rows), ``train_tasks.jsonl`` and ``heldout_tasks.jsonl`` (task rows) to
    ``out_dir``; returns their paths and counts."""
    sets = sets or ToySets()
    out = Path(out_dir)
    demo_numbers, train_numbers, heldout_numbers = sets.numbers()
    rng = random.Random(sets.seed + 1)
    demos = [demo_row(n, demonstrate(n, rng, sets.wrong_rate)) for n in demo_numbers]
    wrong = sum(row["messages"][1]["content"] != n[::-1] for row, n in zip(demos, demo_numbers, strict=True))
    files = {
        "demos": (out / "demos.jsonl", demos),
        "train_tasks": (out / "train_tasks.jsonl", [task_row(n, f"train-{n}") for n in train_numbers]),
        "heldout_tasks": (
            out / "heldout_tasks.jsonl",
            [task_row(n, f"heldout-{n}") for n in heldout_numbers],
        ),
    }
    summary: dict[str, Any] = {"task": TASK, "verifier": VERIFIER, "seed": sets.seed, "wrong_demos": wrong}
    for name, (path, rows) in files.items():
        summary[name] = {"path": str(path), "rows": write_jsonl(path, rows)}
    return summary


def build_toy_base(out_dir: str | Path, seed: int = 0, hidden_size: int = 128, num_layers: int = 2) -> Path:
    """The untrained model for the toy task: rollforge.tiny's template, a digit-level tokenizer, random weights.
    Train it on ``demos.jsonl`` with ``rollforge train sft`` to get the partly competent base."""
    from rollforge.tiny import build_tiny_model

    return build_tiny_model(
        out_dir, seed=seed, hidden_size=hidden_size, num_layers=num_layers, char_level=True
    )


# Settings found on the toy task (2 cores): a base between 20% and 60% success, and rounds that learn.
BASE_CONFIG: dict[str, Any] = {  # SFTConfig fields for `rollforge train sft --config base_config.yaml`
    "max_steps": 2000,
    "learning_rate": 3e-3,
    "per_device_train_batch_size": 32,
    "seed": 0,
    "save_strategy": "no",
    "logging_steps": 50,
}
LOOP_RECIPE: dict[str, Any] = {
    "base_model": "base",
    "train_tasks": "train_tasks.jsonl",
    "heldout_tasks": "heldout_tasks.jsonl",
    "output": "loop",
    "rounds": 2,
    "samples": 4,
    "eval_samples": 2,
    "method": "sft",
    "collect": {"mode": "local", "verifier": VERIFIER, "temperature": 1.0, "max_tokens": 8},
    "train": {"max_steps": 60, "learning_rate": 1e-3, "batch_size": 32},
}
# DPO moves a model much further per step than SFT: at SFT's learning rate it unlearns the task.
DPO_CHANGES: dict[str, Any] = {
    "method": "dpo",
    "output": "loop_dpo",
    "train": {**LOOP_RECIPE["train"], "learning_rate": 1e-4},
}


def write_toy_loop(out_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """Beside the toy's files: the untrained model (``untrained/``), the base's training config
    (``base_config.yaml``: ``rollforge train sft --model untrained --data demos.jsonl -o base --config
    base_config.yaml``) and iterate recipes for that base (``loop.yaml``: SFT; ``loop_dpo.yaml``: DPO)."""
    import yaml

    out = Path(out_dir)
    model = build_toy_base(out / "untrained", seed=seed)
    files = {
        "base_config": (out / "base_config.yaml", {**BASE_CONFIG, "seed": seed}),
        "recipe": (out / "loop.yaml", {**LOOP_RECIPE, "seed": seed}),
        "dpo_recipe": (out / "loop_dpo.yaml", {**LOOP_RECIPE, **DPO_CHANGES, "seed": seed}),
    }
    for path, values in files.values():
        with atomic_file(path) as fh:
            fh.write(yaml.safe_dump(values, sort_keys=False).encode())
    return {"untrained": str(model), **{name: str(path) for name, (path, _) in files.items()}}
