"""The NeMo Gym "Offline Training (SFT/DPO)" tutorial's pipeline, re-implemented faithfully as the baseline.

Its code as the page gives it (stdlib json, one full json.loads per line per step, files re-read between
steps, in-memory grouping and sampling), with the smallest changes that make it do its job on real files,
so both sides do the same work:
- its filter reads ``rollout['output']`` (no such field: it would keep nothing); here ``response.output``;
- it requires ``rollout['success']`` (no such field); here success is ``reward >= 1.0``, rollforge's default;
- its SFT rows take ``rollout['output']``; here ``response.output`` (still without the prompt, as written);
- ``process_sft_data`` and ``create_dpo_pairs`` run on the filtered file, as the page does.
"""

from __future__ import annotations

import json
import random
import sys
from typing import Dict  # noqa: UP035 (the page's own imports)


def filter_rollouts(input_file: str, output_file: str, filters: Dict) -> None:  # noqa: UP006
    """Apply automatic quality filters to rollouts."""
    with open(input_file) as f, open(output_file, "w") as out:
        kept = 0
        total = 0
        for line in f:
            rollout = json.loads(line)
            total += 1
            output = rollout["response"]["output"]
            if (
                rollout.get("reward", 0) >= filters.get("min_reward", 0.5)
                and rollout.get("reward", 0) >= 1.0
                and len(output) >= filters.get("min_turns", 2)
                and len(output) <= filters.get("max_turns", 20)
            ):
                out.write(line)
                kept += 1
        print(f"Kept {kept}/{total} rollouts ({kept / total * 100:.1f}%)", file=sys.stderr)


def sample_for_review(input_file: str, output_file: str, sample_size: int = 50) -> None:
    """Sample rollouts for manual review."""
    with open(input_file) as f:
        rollouts = [json.loads(line) for line in f]
    low_reward = [r for r in rollouts if r.get("reward", 0) < 0.5]
    mid_reward = [r for r in rollouts if 0.5 <= r.get("reward", 0) < 0.8]
    high_reward = [r for r in rollouts if r.get("reward", 0) >= 0.8]
    sample = (
        random.sample(low_reward, min(10, len(low_reward)))
        + random.sample(mid_reward, min(20, len(mid_reward)))
        + random.sample(high_reward, min(20, len(high_reward)))
    )
    with open(output_file, "w") as out:
        for rollout in sample:
            out.write(json.dumps(rollout) + "\n")


def process_sft_data(filtered_rollout_file: str, output_file: str) -> None:
    """Convert filtered rollouts to SFT training format."""
    with open(filtered_rollout_file) as f, open(output_file, "w") as out:
        for line in f:
            rollout = json.loads(line)
            sft_example = {
                "messages": rollout["response"]["output"],
                "reward": rollout["reward"],
                "task_type": rollout.get("metadata", {}).get("task_type", "general"),
            }
            out.write(json.dumps(sft_example) + "\n")


def create_dpo_pairs(filtered_rollout_file: str, output_file: str) -> None:
    """Create preference pairs from pairs of filtered rollouts."""
    task_groups: dict = {}
    with open(filtered_rollout_file) as f:
        for line in f:
            rollout = json.loads(line)
            task_id = rollout.get("task_id") or hash(json.dumps(rollout["responses_create_params"]["input"]))
            if task_id not in task_groups:
                task_groups[task_id] = []
            task_groups[task_id].append(rollout)
    pairs = []
    for task_rollouts in task_groups.values():
        if len(task_rollouts) == 2:
            rollout_1, rollout_2 = task_rollouts
            if rollout_1["reward"] > rollout_2["reward"]:
                chosen, rejected = rollout_1, rollout_2
            else:
                chosen, rejected = rollout_2, rollout_1
            quality_diff = chosen["reward"] - rejected["reward"]
            if quality_diff >= 0.1:
                pairs.append(
                    {
                        "prompt": chosen["responses_create_params"]["input"],
                        "chosen": chosen["response"]["output"],
                        "rejected": rejected["response"]["output"],
                        "quality_difference": quality_diff,
                    }
                )
    with open(output_file, "w") as out:
        for pair in pairs:
            out.write(json.dumps(pair) + "\n")
    print(f"Created {len(pairs)} preference pairs", file=sys.stderr)


FILTERS = {"min_reward": 0.7, "min_turns": 3, "max_turns": 15}  # the values the page passes


def run(step: str, inputs: list[str], out_dir: str) -> None:
    """One benchmark target: sft | dpo | sample | build (all steps), over several input files."""
    for i, path in enumerate(inputs):
        filtered = f"{out_dir}/filtered_{i}.jsonl"
        if step in ("sft", "dpo", "build"):
            filter_rollouts(path, filtered, FILTERS)
        if step in ("sample", "build"):
            sample_for_review(path, f"{out_dir}/review_{i}.jsonl")
        if step in ("sft", "build"):
            process_sft_data(filtered, f"{out_dir}/sft_{i}.jsonl")
        if step in ("dpo", "build"):
            create_dpo_pairs(filtered, f"{out_dir}/dpo_{i}.jsonl")


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[3:], sys.argv[2])
