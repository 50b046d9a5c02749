"""Compare two rollouts files (before/after training): the API behind ``rollforge compare``.

Each side is summarised over all its rollouts (mean reward, success rate, pass@k). The difference is
measured on **paired** prompts only (same ``prompt_id`` on both sides): per prompt, candidate mean reward
minus baseline mean reward; their mean, a paired bootstrap CI (prompts resampled) and a paired
permutation-test p-value. Prompts on one side only are counted and listed, never mixed into those numbers.
The same is computed per task type (or per ``by`` field). The result is one JSON-able dict, which the
terminal view, the HTML page and ``--json`` all render.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rollforge.compare.provenance import check_task_sets, contamination_warnings, side_provenance
from rollforge.compare.stats import mean_pass_at_k, paired_bootstrap_ci, permutation_p_value, wins_losses_ties
from rollforge.decode import LineDecoder
from rollforge.errors import RollforgeError
from rollforge.io.read import read_rollouts
from rollforge.progress import track
from rollforge.rollout import Reject, Rollout
from rollforge.success import Success

SMALL_N = 30  # fewer paired prompts than this: the CI and p-value are rough
ALPHA = 0.05  # significance: the 95% CI excludes 0 and the permutation p is below this
MISSING = "(missing)"  # group of rollouts whose --by field is absent


@dataclass(frozen=True, slots=True)
class CompareOptions:
    success: Success = field(default_factory=Success)
    ks: tuple[int, ...] = (1, 4)
    by: str | None = None  # dotted field to break down by; None: task type
    n_boot: int = 10_000
    n_perm: int = 10_000
    seed: int = 0
    allow_different_tasks: bool = False  # else runs over different task sets are refused

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise RollforgeError("--k values must be positive integers", hint="e.g. --k 1,4,8")
        if self.n_boot < 100 or self.n_perm < 100:
            raise RollforgeError("--bootstrap and --permutations need at least 100 resamples")


@dataclass(slots=True)
class _Prompt:
    """One prompt's rollouts on one side."""

    rewards: list[float] = field(default_factory=list)
    successes: int = 0

    @property
    def mean(self) -> float:
        return sum(self.rewards) / len(self.rewards)

    @property
    def success_rate(self) -> float:
        return self.successes / len(self.rewards)


@dataclass(slots=True)
class _Side:
    files: list[str]
    groups: dict[str, dict[str, _Prompt]] = field(default_factory=dict)  # group -> prompt_id -> rollouts
    rejected: Counter = field(default_factory=Counter)
    lines: int = 0

    def prompts(self) -> dict[str, _Prompt]:
        """prompt_id -> rollouts over all groups (a prompt whose rollouts fall in two groups is merged)."""
        out: dict[str, _Prompt] = {}
        for prompts in self.groups.values():
            for pid, cell in prompts.items():
                merged = out.setdefault(pid, _Prompt())
                merged.rewards.extend(cell.rewards)
                merged.successes += cell.successes
        return out


def _group(rollout: Rollout, by: str | None) -> str:
    if by is None:
        return rollout.task_type
    value = rollout.field(by)
    return MISSING if value is None else str(value)


def load_side(paths: list[str], options: CompareOptions, label: str = "reading") -> _Side:
    extra = (*options.success.fields, *((options.by.split(".")[0],) if options.by else ()))
    fields = {"--success-field": options.success.fields, "--by": extra[len(options.success.fields) :]}
    side = _Side(files=list(paths))
    records = read_rollouts(
        paths, LineDecoder(extra_fields=extra), fields={k: v for k, v in fields.items() if v}
    )
    for record in track(records, label, unit="lines"):
        side.lines += 1
        if isinstance(record, Reject):
            side.rejected[record.reason] += 1
            continue
        cell = side.groups.setdefault(_group(record, options.by), {}).setdefault(record.prompt_id, _Prompt())
        cell.rewards.append(record.reward)
        cell.successes += bool(options.success(record))
    return side


def summarize(prompts: dict[str, _Prompt], ks: tuple[int, ...]) -> dict[str, Any]:
    """Numbers of one side (over all its rollouts): rollouts, prompts, mean reward, success rate, pass@k."""
    rewards = [r for p in prompts.values() for r in p.rewards]
    successes = sum(p.successes for p in prompts.values())
    counts = [(len(p.rewards), p.successes) for p in prompts.values()]
    pass_k, pass_k_prompts = {}, {}
    for k in ks:
        value, used = mean_pass_at_k(counts, k)
        if value is not None:  # k larger than every prompt's sample count: no estimate
            pass_k[str(k)], pass_k_prompts[str(k)] = value, used
    return {
        "rollouts": len(rewards),
        "prompts": len(prompts),
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        "success_rate": successes / len(rewards) if rewards else None,
        "pass_at_k": pass_k,
        "pass_at_k_prompts": pass_k_prompts,
    }


def paired(base: dict[str, _Prompt], cand: dict[str, _Prompt], options: CompareOptions) -> dict[str, Any]:
    """The paired analysis over prompts present on both sides."""
    common = sorted(base.keys() & cand.keys())
    result: dict[str, Any] = {
        "n_paired": len(common),
        "only_baseline": sorted(base.keys() - cand.keys()),
        "only_candidate": sorted(cand.keys() - base.keys()),
    }
    delta: dict[str, Any] = {
        "mean_reward": None,
        "ci95": None,
        "p_value": None,
        "p_value_method": None,
        "p_value_at_floor": None,
        "success_rate": None,
        "wins": 0,
        "losses": 0,
        "ties": 0,
    }
    if common:
        diffs = np.array([cand[p].mean - base[p].mean for p in common])
        success_diffs = np.array([cand[p].success_rate - base[p].success_rate for p in common])
        low, high = paired_bootstrap_ci(diffs, options.n_boot, options.seed)
        p_value, method = permutation_p_value(diffs, options.n_perm, options.seed)
        wins, losses, ties = wins_losses_ties(diffs)
        delta.update(
            mean_reward=float(diffs.mean()),
            ci95=[low, high],
            p_value=p_value,
            p_value_method=method,
            # No random sign flip was as extreme: the true p is below what this many permutations resolve.
            p_value_at_floor=method == "monte_carlo" and p_value <= 1 / (options.n_perm + 1),
            success_rate=float(success_diffs.mean()),
            wins=wins,
            losses=losses,
            ties=ties,
        )
    result["delta"] = delta
    return result


def _unpaired(delta: dict[str, Any], b: dict[str, Any], c: dict[str, Any]) -> None:
    for key in ("mean_reward", "success_rate"):
        both = b[key] is not None and c[key] is not None
        delta[f"{key}_unpaired"] = c[key] - b[key] if both else None


def p_phrase(delta: dict[str, Any]) -> str:
    """The permutation p-value in words; at its floor, said as a bound (1/(n+1) for n random flips)."""
    p = delta["p_value"]
    if delta.get("p_value_at_floor"):
        n = round(1 / p) - 1
        return f"p <= 1/{n + 1}, the floor of {n} permutations (none was as extreme)"
    return f"p = {p:.3g}"


def verdict(delta: dict[str, Any], n_paired: int) -> str:
    """Honest words for the paired result: significant only when the 95% CI excludes 0 *and* the
    permutation p is below 0.05; when the two disagree (the percentile bootstrap is a little liberal on few
    prompts) the verdict is "inconclusive", and says which way each points."""
    if not n_paired:
        return "no paired prompts: no paired comparison"
    low, high = delta["ci95"]
    p, p_words = delta["p_value"], "the permutation " + p_phrase(delta)
    excludes = low > 0.0 or high < 0.0
    if excludes and p < ALPHA:
        way = "better" if low > 0 else "worse"
        return f"candidate {way} (the 95% CI of the mean reward difference excludes 0, and {p_words})"
    if not excludes and p >= ALPHA:
        return (
            f"no significant difference (the 95% CI of the mean reward difference includes 0, and {p_words})"
        )
    if excludes:
        return f"inconclusive (the 95% CI of the mean reward difference excludes 0, but {p_words} is not below {ALPHA})"
    return (
        f"inconclusive ({p_words} is below {ALPHA}, but the 95% CI of the mean reward difference includes 0)"
    )


def compare_group(
    base: dict[str, _Prompt], cand: dict[str, _Prompt], options: CompareOptions
) -> dict[str, Any]:
    """Summary, delta and pairing of one slice of prompts (everything, or one group)."""
    b, c = summarize(base, options.ks), summarize(cand, options.ks)
    result = {"baseline": b, "candidate": c, **paired(base, cand, options)}
    _unpaired(result["delta"], b, c)
    result["pass_at_k"] = {}
    for k in dict.fromkeys([*b["pass_at_k"], *c["pass_at_k"]]):
        before, after = b["pass_at_k"].get(k), c["pass_at_k"].get(k)
        delta = after - before if before is not None and after is not None else None
        result["pass_at_k"][k] = {"baseline": before, "candidate": after, "delta": delta}
    result["verdict"] = verdict(result["delta"], result["n_paired"])
    return result


def compare(
    baseline: list[str], candidate: list[str], options: CompareOptions | None = None
) -> dict[str, Any]:
    """Compare two sets of rollouts files; see the module docstring for what the dict holds."""
    options = options or CompareOptions()
    base, cand = load_side(baseline, options, "baseline"), load_side(candidate, options, "candidate")
    result = compare_group(base.prompts(), cand.prompts(), options)
    for name, side in (("baseline", base), ("candidate", cand)):
        result[name].update(
            files=side.files,
            lines=side.lines,
            rejected=sum(side.rejected.values()),
            rejected_by_reason=dict(side.rejected.most_common()),
            provenance=side_provenance(side.files),
        )
    by_key = f"by_{options.by}" if options.by else "by_task_type"
    result[by_key] = {}
    for group in sorted(base.groups.keys() | cand.groups.keys()):
        sliced = compare_group(base.groups.get(group, {}), cand.groups.get(group, {}), options)
        for key in ("only_baseline", "only_candidate"):  # ids are listed once, at the top level
            sliced[f"n_{key}"] = len(sliced.pop(key))
        result[by_key][group] = sliced
    result.update(
        by=options.by or "task_type",
        success=options.success.describe(),
        settings={
            "k": list(options.ks),
            "bootstrap": options.n_boot,
            "permutations": options.n_perm,
            "seed": options.seed,
        },
        warnings=warnings(result),
    )
    check_task_sets(result, options.allow_different_tasks)
    evaluated = {"baseline": set(base.prompts()), "candidate": set(cand.prompts())}
    result["warnings"] += contamination_warnings(result, evaluated)
    return result


def warnings(result: dict[str, Any]) -> list[str]:
    out = []
    n = result["n_paired"]
    if not n:
        out.append(
            "no prompt is in both files: nothing to pair (same tasks, system prompt and tools on both sides?)"
        )
    elif n < SMALL_N:
        out.append(
            f"only {n} paired prompts (< {SMALL_N}): the CI and p-value are rough; collect more prompts"
        )
    for side in ("baseline", "candidate"):
        only = len(result[f"only_{side}"])
        if only:
            out.append(f"{only} prompts only in the {side}: left out of the paired numbers")
        rejected = result[side]["rejected"]
        if rejected:
            reasons = ", ".join(f"{r}: {c}" for r, c in result[side]["rejected_by_reason"].items())
            out.append(f"{rejected} lines of the {side} rejected ({reasons})")
        if not result[side]["rollouts"]:
            out.append(f"the {side} holds no usable rollout")
    return out
