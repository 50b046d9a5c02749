"""The commented starter recipe ``rollforge init`` writes."""

STARTER = """\
# rollforge build recipe. Run it with:  rollforge build rollforge.yaml
# Every key is also a flag of `rollforge build` (min_reward <-> --min-reward); flags override the file.
# Paths are relative to this file.

inputs:                       # rollouts files, directories (searched for *.jsonl, .jsonl.gz, .jsonl.zst) or globs
  - rollouts/
output: releases              # each build adds releases/v1, releases/v2, ... (never overwritten)
# version: v1-math            # name the release yourself instead
seed: 0                       # every random choice (splits, sampling, balancing) follows it
val_fraction: 0.1             # share of PROMPTS held out for validation (no prompt is in both splits)
extra_formats: [nemo-rl]      # besides trl: nemo-rl, openai, sharegpt

# --- quality filters: an SFT row and the chosen side of a DPO pair must pass them ---------------
success_only: true            # SFT from successful rollouts only
success_threshold: 1.0        # success = reward >= this ...
# success_field: is_correct   # ... or a truthy field (real rollouts have no `success` field)
# min_reward: 0.5
# max_reward: null
# min_task_success_rate: 0.2  # drop prompts the policy almost never solves
# min_items: 2                # items in response.output (the tutorial's "turns")
# max_items: 40
# min_turns: 1                # assistant turns
# max_turns: 20
# require_tool_use: false
drop_truncated: true          # rollouts cut off by max_output_tokens
# max_tokens: 8192            # length of the rendered chat template ...
# tokenizer: Qwen/Qwen3-8B    # ... in this tokenizer's tokens (also used by the report)
# where: 'metadata.task_type == "math" and reward >= 0.7'
# dedup: exact                # or near (MinHash over the assistant text)
# near_threshold: 0.9
# review_db: review.sqlite    # rollouts a reviewer rejected in `rollforge review` are dropped

# --- SFT -------------------------------------------------------------------------------------------
# reasoning: field            # reasoning_content (field), inline <think> (think), or drop
# balance_by: task_name       # cap each category of this field ...
# max_per_category: 500       # ... with a seeded random choice

# --- DPO (pairs are made inside each prompt's group of rollouts, before quality filtering) --------
dpo: true
pairing: best-worst           # best-worst | best-random | all
min_margin: 0.1               # chosen reward - rejected reward must be at least this
# max_pairs_per_prompt: 4     # with pairing: all
# split_at_divergence: false  # multi-turn: put the part both sides share into the prompt

# --- review sample ----------------------------------------------------------------------------------
strata: "0.5:10,0.8:20,inf:20"  # UPPER:COUNT: 10 below 0.5, 20 in [0.5, 0.8), 20 at or above 0.8
"""
