"""The commented starter recipe ``rollforge init`` writes. The quality filters' lines come from their
declarations (``rollforge.filters``) and the recipe's defaults, so they cannot drift from the flags."""

from __future__ import annotations

from typing import Any

import yaml

HEAD = """\
# rollforge build recipe. Run it with:  rollforge build rollforge.yaml
# Every key is also a flag of `rollforge build` (min_reward <-> --min-reward); flags override the file.
# Paths are relative to this file.

inputs:                       # rollouts files, directories (searched for *.jsonl, .jsonl.gz, .jsonl.zst) or globs
  - rollouts/
output: releases              # each build adds releases/v1, releases/v2, ... (never overwritten)
# version: v1-math            # name the release yourself instead
seed: 0                       # every random choice (splits, sampling, balancing) follows it
val_fraction: 0.1             # share of PROMPTS held out for validation (no prompt is in both splits)
extra_formats: []             # besides trl and nemo-rl (always written): openai, sharegpt
# workers: 2                  # processes (default: all cores)
# engine: local               # local, or ray: Ray Data on a cluster (pip install 'rollforge[ray]')
# ray_address: auto           # with engine: ray, a running cluster (default: start one here)
# memory_budget: 512          # MB for DPO grouping; a larger index is grouped in buckets on disk
# max_line_bytes: 268435456   # bytes; a longer line is rejected unread (line_too_long); default 256 MiB
# allow_empty: true           # build a release with no rows instead of failing (exit 1)

# --- quality filters: an SFT row and the chosen side of a DPO pair must pass them ---------------
"""

TAIL = """
# --- SFT -------------------------------------------------------------------------------------------
# reasoning: field            # reasoning_content (field), inline <think> (think), or drop

# --- DPO (pairs are made inside each prompt's group of rollouts, before quality filtering) --------
dpo: true
pairing: best-worst           # best-worst | best-random | all
min_margin: 0.1               # chosen reward - rejected reward must be at least this
margin_scale: absolute        # or range: min_margin is a fraction of each environment's reward range
# max_pairs_per_prompt: 4     # with pairing: all
# split_at_divergence: false  # multi-turn: put the part both sides share into the prompt
# recollect: unpaired.jsonl   # the prompts left without a pair, as task rows for `rollforge collect`

# --- KTO (TRL's unpaired preference rows: one rollout per prompt is enough) -----------------------
kto: false                    # true: a kto config; successes desirable, failures undesirable (a second read)
# undesirable_below: 0.3      # label false only failures with reward below this (default: every failure)

# --- review sample ----------------------------------------------------------------------------------
strata: "0.5:10,0.8:20,inf:20"  # UPPER:COUNT: 10 below 0.5, 20 in [0.5, 0.8), 20 at or above 0.8
sample_by_env: false          # true: each stratum drawn within each environment

# --- the report's checklist (every threshold by name: the report page lists them) ------------------
# checks: {min_sft_rows: 1000, max_task_share: 0.5, min_sample: 30}
# fail_on_warn: false         # exit 1 when a report check warns (the release is still written)
"""


def _value(value: Any) -> str:
    text: str = yaml.safe_dump(value, default_flow_style=True, width=1000)
    return text.removesuffix("\n...\n").strip()


def filter_lines() -> list[str]:
    """One line per filter option: its recipe default, or (for an option that is off) an example commented
    out, with the option's help."""
    from rollforge.build.recipe import RecipeModel
    from rollforge.filters import OPTIONS

    lines = []
    for option in OPTIONS:
        key = option.recipe_key
        default = RecipeModel.model_fields[key].default
        if default is None or default is False:
            example = option.example if option.example is not None else True
            line = f"# {key}: {_value(example)}"
        else:
            line = f"{key}: {_value(default)}"
        lines.append(f"{line:<29} # {option.help}" if len(line) < 29 else f"{line}  # {option.help}")
    return lines


def starter() -> str:
    return HEAD + "\n".join(filter_lines()) + "\n" + TAIL
