"""The quality filters, one declaration each (``rollforge.filtering`` says what a declaration holds).

Everything else is derived from :data:`FILTERS`: the CLI flags of ``sft``, ``dpo`` and ``build``, the
recipe's keys, the starter recipe's lines, :class:`FilterOptions`, and the filter reason codes
(``rollforge.reasons``). A dropped rollout is counted under the first filter it fails, in the order below:
those judged one rollout at a time first (the cheap ones first, the tokenizer last), then those that need
every rollout. Adding a filter is one declaration here, plus its tests.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

import msgspec

from rollforge.decontam import DEFAULT_NGRAM, load_eval_tasks
from rollforge.dedup import minhash, near_duplicates
from rollforge.environments import DEFAULT, MAX, Policy, check_environments, environment_of
from rollforge.errors import RollforgeError
from rollforge.filtering import HEAD, KEPT, PROMPT, ROLLOUT, Filter, Filtering, Rows, Stage
from rollforge.identity import conversation_hash
from rollforge.mix import Mixer
from rollforge.options import Option, OptionValues
from rollforge.rollout import Rollout
from rollforge.schema import text
from rollforge.success import Success
from rollforge.where import Where


def _mtime(path: str) -> float:
    """When the database last changed (in WAL mode new labels land in the -wal file first)."""
    times = [os.stat(p).st_mtime for p in (path, path + "-wal") if os.path.exists(p)]
    return max(times, default=0.0)  # a missing path: rejected_ids says clearly what is wrong


@lru_cache(maxsize=2)
def review_labels(db_path: str, mtime: float = 0.0) -> dict[str, str]:
    """rollout_id -> current review label (loaded once per process and database state)."""
    from rollforge.labels import load_labels

    return load_labels(db_path)


def _labels(db_path: str) -> dict[str, str]:
    return review_labels(db_path, _mtime(db_path))


@lru_cache(maxsize=2)
def token_counter(tokenizer: str | None) -> Callable[[Rollout], int]:
    """Length of the rendered chat template in real tokens (loaded once per process)."""
    from rollforge.tokens import load_tokenizer, render_length

    tok = load_tokenizer(tokenizer)
    return lambda r: render_length(tok, r.messages, r.tools)


SUCCESS_THRESHOLD = Option(
    "success_threshold",
    float,
    "success means reward >= this (default: 1.0); real rollouts have no `success` field",
    default=1.0,
)
SUCCESS_FIELD = Option(
    "success_field",
    str,
    "success means this field is truthy (e.g. is_correct)",
    metavar="NAME",
    example="is_correct",
    fields=lambda name: (name.split(".")[0],),
)
TOKENIZER = Option(
    "tokenizer",
    str,
    "tokenizer for --max-tokens (also the report's token counts)",
    metavar="PATH_OR_ID",
    example="Qwen/Qwen3-8B",
)
DEDUP = Option(
    "dedup",
    str,
    "drop duplicates: exact (default; the same conversation twice), near (MinHash on assistant text), "
    "off (keep every copy)",
    choices=("exact", "near", "off"),
    default="exact",  # a training set never holds the same rollout twice unless asked
)
NEAR_THRESHOLD = Option(
    "near_threshold", float, "Jaccard threshold for --dedup near", default=0.9, gt=0.0, le=1.0
)
ENV_FIELD = Option(
    "env_field",
    str,
    "where a rollout names its environment (default: agent_ref.name, else the rollouts file's stem)",
    metavar="PATH",
    example="metadata.env",
    fields=lambda path: (path.split(".")[0],),
)
ENVIRONMENTS = Option(
    "environments",
    dict,
    "each environment's policy: NAME -> success_threshold (a number, or max), min_reward, max_rollouts, "
    "weight; `default` for the others (flags: --success-threshold NAME=T, --mix NAME=WEIGHT, ...)",
    example={"default": {"success_threshold": 1.0}, "grl_sokoban_gymnasium_agent": {"success_threshold": 10}},
    check=check_environments,
    fields=lambda _: ("agent_ref",),
    fields_optional=True,  # agent_ref.name where present, else the file's stem
)
MIX_SIZE = Option(
    "mix_size",
    int,
    "rows of the mixed set: each environment of --mix is asked for its share of N (default: the largest set "
    "that holds every share)",
    metavar="N",
    ge=1,
    example=10000,
)
LABELS = Option(
    "labels",
    str,
    "drop rollouts a reviewer rejected or flagged (rollforge review): never an SFT row or a DPO chosen side",
    metavar="REVIEW_DB",
    example="review.sqlite",
    key="review_db",
)
BALANCE_BY = Option(
    "balance_by",
    str,
    "cap each category of this field (dotted path) at --max-per-category",
    metavar="FIELD",
    example="task_name",
    fields=lambda path: (path.split(".")[0],),
)
CONTAMINATION_NGRAM = Option(
    "contamination_ngram",
    int,
    "words in a run shared with an evaluation task's user text that make a prompt contaminated",
    metavar="N",
    default=DEFAULT_NGRAM,
    ge=1,
)

FILTERS: tuple[Filter[Any, Any], ...] = (
    Filter("no_assistant_turn", "the model produced no assistant message", HEAD, None,
           keep=lambda r, _: r.turns >= 1),
    Filter("review_rejected", "a reviewer labelled it `reject` in the review database (--labels)", HEAD,
           LABELS, prepare=lambda db, _: _labels(db), keep=lambda r, labels: labels.get(r.rollout_id) != "reject"),
    Filter("review_flagged", "a reviewer flagged it for another look (--labels)", HEAD,
           LABELS, prepare=lambda db, _: _labels(db), keep=lambda r, labels: labels.get(r.rollout_id) != "flag"),
    Filter("not_accepted", "--labels-keep accept and no reviewer accepted it", HEAD,
           Option("labels_keep", str, "with --labels: `accept` keeps only the rollouts a reviewer accepted",
                  choices=("accept",), example="accept", requires="labels"),
           settings=(LABELS,), prepare=lambda _, o: _labels(o.labels),
           keep=lambda r, labels: labels.get(r.rollout_id) == "accept"),
    Filter("truncated", "the response was cut off (incomplete_details); --drop-truncated", HEAD,
           Option("drop_truncated", bool, "drop rollouts cut off by max_output_tokens (default: drop)", default=True),
           keep=lambda r, _: not r.truncated),
    Filter("below_min_reward", "reward < --min-reward (or its environment's min_reward)", HEAD,
           Option("min_reward", float, "drop rollouts with reward below this", example=0.5),
           settings=(ENVIRONMENTS, ENV_FIELD), also=lambda o: Policy.of(o.environments).any("min_reward"),
           prepare=lambda bound, o: _env_bound(bound, o), keep=lambda r, bound: r.reward >= bound(r)),
    Filter("above_max_reward", "reward > --max-reward", HEAD,
           Option("max_reward", float, "drop rollouts with reward above this", example=1.0),
           keep=lambda r, bound: r.reward <= bound),
    Filter("not_success", "the rollout is not a success (success-only is the default: --no-success-only)", HEAD,
           Option("success_only", bool, "keep successful rollouts only: SFT rows and DPO chosen sides "
                  "(default: yes; --no-success-only keeps every rollout)", default=True),
           settings=(SUCCESS_THRESHOLD, SUCCESS_FIELD, ENV_FIELD, ENVIRONMENTS),
           prepare=lambda _, o: o.success,
           keep=lambda r, success: success(r)),
    Filter("too_few_items", "fewer items in response.output than --min-items", HEAD,
           Option("min_items", int, "min items in response.output (the tutorial's 'turns')", ge=0, example=2),
           keep=lambda r, bound: r.n_items >= bound),
    Filter("too_many_items", "more items in response.output than --max-items", HEAD,
           Option("max_items", int, "max items in response.output", ge=0, example=40),
           keep=lambda r, bound: r.n_items <= bound),
    Filter("too_few_turns", "fewer assistant turns than --min-turns", HEAD,
           Option("min_turns", int, "min assistant turns", ge=0, example=1),
           keep=lambda r, bound: r.turns >= bound),
    Filter("too_many_turns", "more assistant turns than --max-turns", HEAD,
           Option("max_turns", int, "max assistant turns", ge=0, example=20),
           keep=lambda r, bound: r.turns <= bound),
    Filter("no_tool_use", "--require-tool-use and no tool call", HEAD,
           Option("require_tool_use", bool, "keep rollouts that call a tool", default=False),
           keep=lambda r, _: r.uses_tools),
    Filter("where_false", "the --where expression is false", HEAD,
           Option("where", str, "keep rollouts where EXPR holds, e.g. 'metadata.task_type == \"math\" and "
                  "reward >= 0.7'", metavar="EXPR", example='metadata.task_type == "math" and reward >= 0.7',
                  check=Where, fields=lambda text: Where(text).roots),
           settings=(ENV_FIELD,), prepare=lambda text, o: Where(text, o.env_field), keep=lambda r, where: where(r),
           converted_if=lambda where: "prompt_id" in where.roots),  # a first look has no prompt_id
    Filter("contaminated", "the prompt is an evaluation task of --exclude-tasks: the same prompt_id, or a "
           "--contamination-ngram word run of its user text (rollforge.decontam)", ROLLOUT,
           Option("exclude_tasks", str, "drop rollouts whose prompt is one of these evaluation tasks (JSONL of "
                  "task rows or rollouts): same prompt_id, or a shared run of --contamination-ngram words",
                  metavar="EVAL_JSONL", example="heldout_tasks.jsonl"),
           settings=(CONTAMINATION_NGRAM,), prepare=lambda path, o: load_eval_tasks(path, o.contamination_ngram),
           keep=lambda r, tasks: tasks.match(r.prompt_id, r.prompt) is None),
    Filter("too_much_reasoning", "more characters of reasoning than --max-reasoning-chars", ROLLOUT,
           Option("max_reasoning_chars", int, "max characters of reasoning the model wrote in the rollout, all "
                  "turns together (decoded text: an escaped character counts once)", metavar="N", ge=0,
                  example=20000),
           keep=lambda r, limit: sum(len(text(m.get("reasoning_content")))
                                     for m in r.completion if m["role"] == "assistant") <= limit),
    Filter("too_many_tokens", "the rendered chat template is longer than --max-tokens", ROLLOUT,
           Option("max_tokens", int, "max tokens of the rendered chat template (needs --tokenizer)", ge=1,
                  example=8192, requires="tokenizer"),
           settings=(TOKENIZER,), prepare=lambda n, o: (token_counter(o.tokenizer), n),
           keep=lambda r, limit: limit[0](r) <= limit[1]),
    Filter("not_in_mix", "its environment has no weight in --mix (recipe environments: weight)", HEAD,
           ENVIRONMENTS, on=lambda envs: bool(Policy.of(envs).weights), settings=(ENV_FIELD, MIX_SIZE),
           prepare=lambda envs, o: (Policy.of(envs).weights, o.env_field),
           keep=lambda r, mix: _in_mix(mix[0], environment_of(r, mix[1]))),
    Filter("low_task_success_rate", "the prompt's success rate over its rollouts < --min-task-success-rate",
           PROMPT,
           Option("min_task_success_rate", float, "keep rollouts of prompts whose success rate over their "
                  "rollouts is >= R", metavar="R", ge=0.0, le=1.0, example=0.2),
           drop=lambda rows, kept, rate: _low_success_rate(rows, kept, rate)),
    Filter("duplicate", "an exact duplicate of an earlier kept rollout (--dedup exact, the default)", KEPT, DEDUP,
           on=lambda how: how == "exact", column=lambda r, _: conversation_hash(r.messages, r.tools), typecode="Q",
           drop=lambda rows, kept, _: _repeats(rows.column("duplicate"), kept)),
    Filter("near_duplicate", "a near duplicate of an earlier kept rollout (--dedup near)", KEPT, DEDUP,
           on=lambda how: how == "near", settings=(NEAR_THRESHOLD,), prepare=lambda _, o: float(o.near_threshold),
           column=lambda r, _: minhash(r),
           drop=lambda rows, kept, threshold: near_duplicates(rows.column("near_duplicate"), kept, threshold)),
    Filter("over_category_cap", "over --max-per-category for its --balance-by category", KEPT,
           Option("max_per_category", int, "rows kept per --balance-by category (a seeded choice)", ge=1,
                  example=500, requires="balance_by"),
           settings=(BALANCE_BY,), prepare=lambda cap, o: (str(o.balance_by), int(cap)),
           column=lambda r, how: category(r, how[0]),
           drop=lambda rows, kept, how: _over_cap(rows, kept, how[1])),
    Filter("over_env_cap", "over its environment's max_rollouts (a seeded choice)", KEPT, ENVIRONMENTS,
           on=lambda envs: Policy.of(envs).any("max_rollouts"), prepare=lambda envs, _: Policy.of(envs),
           drop=lambda rows, kept, policy: _over_env_cap(rows, kept, policy)),
    Filter("over_mix_share", "beyond its environment's share of --mix (a seeded choice)", KEPT, ENVIRONMENTS,
           on=lambda envs: bool(Policy.of(envs).weights), settings=(MIX_SIZE,),
           prepare=lambda envs, o: Mixer(Policy.of(envs).weights, o.mix_size),
           drop=lambda rows, kept, mixer: mixer.drop([rows.env_names[c] for c in rows.env], rows.key, kept)),
)  # fmt: skip


def options_of(filters: Iterable[Filter[Any, Any]]) -> tuple[Option[Any], ...]:
    """Every option these filters read, each once, in the order they first appear."""
    seen: dict[str, Option[Any]] = {}
    for f in filters:
        for option in (f.option, *f.settings):
            if option is not None:
                seen.setdefault(option.name, option)
    return tuple(seen.values())


OPTIONS = options_of(FILTERS)
# What may bar a DPO chosen side: every filter but those that shape the SFT set (duplicates, caps).
CHOSEN_OPTIONS = options_of(f for f in FILTERS if f.needs is not KEPT)


class FilterOptions(OptionValues):
    """The value of every filter option, by name (the CLI flag's dest, the recipe key): each filter is off
    unless set. ``FilterOptions(min_reward=0.5, success_only=True)``; unset options hold their default."""

    OPTIONS = OPTIONS

    @property
    def policy(self) -> Policy:
        """Each environment's own settings (``rollforge.environments``)."""
        return Policy.of(self.environments)

    @property
    def success(self) -> Success:
        """What success means, per environment where the policy says (a `max` must be resolved first:
        ``rollforge.engine.observed``)."""
        if self.policy.wants_max:
            raise RollforgeError(
                "success: max needs each environment's best observed reward: resolve it on the data first"
            )
        return self.success_where_known

    @property
    def success_where_known(self) -> Success:
        """``success``, leaving out the environments whose `max` is not resolved yet (inspect counts them
        from their rewards)."""
        policy = self.policy
        default = policy.value(DEFAULT, "success_threshold")
        default = None if default == MAX else default
        per_env = tuple(
            (name, float(rule.success_threshold))
            for name, rule in policy.rules
            if name != DEFAULT and rule.success_threshold not in (None, MAX)
        )
        observed = tuple(name for name, rule in policy.rules if rule.observed_max)
        return Success(
            threshold=self.success_threshold if default is None else float(default),
            field=self.success_field,
            per_env=per_env,
            env_field=self.env_field,
            observed_max=observed,
        )

    @property
    def fields(self) -> tuple[str, ...]:
        """Top-level fields the decoder must keep for these options."""
        roots: set[str] = set()
        for option in self.OPTIONS:
            value = getattr(self, option.name)
            if option.fields is not None and option.is_set(value):
                roots |= set(option.fields(value))
        return tuple(sorted(roots))

    @property
    def fields_by_flag(self) -> dict[str, tuple[str, ...]]:
        """flag -> the top-level fields its value reads (--where's names, --balance-by, --success-field)."""
        return {
            option.flag: tuple(option.fields(value))
            for option in self.OPTIONS
            if option.fields is not None
            and not option.fields_optional
            and option.is_set(value := getattr(self, option.name))
        }

    def filtering(self, *only: Stage[Any]) -> Filtering:
        """The enabled filters (of the stages ``only`` names, else all), prepared for this process."""
        return Filtering(FILTERS, self, only)

    @property
    def judged_per_prompt(self) -> bool:
        """Some filter needs every rollout of a prompt (so every rollout must be converted)."""
        return any(f.enabled(self) for f in FILTERS if f.needs is PROMPT)


def filter_options(values: dict[str, Any]) -> FilterOptions:
    """FilterOptions from CLI flags (``vars(args)``) or a recipe (``model_dump()``)."""
    return FilterOptions.of(values)


def _env_bound(bound: float | None, options: OptionValues) -> Callable[[Rollout], float]:
    """A rollout's --min-reward: its environment's own, else the default entry's, else the global one."""
    policy, env_field = Policy.of(options.environments), options.env_field
    floor = -float("inf") if bound is None else float(bound)
    if not policy.any("min_reward"):
        return lambda _: floor
    cache: dict[str, float] = {}

    def of(rollout: Rollout) -> float:
        env = environment_of(rollout, env_field)
        if env not in cache:
            own = policy.value(env, "min_reward")
            cache[env] = floor if own is None else float(own)
        return cache[env]

    return of


def _in_mix(weights: dict[str, float], env: str) -> bool:
    weight = weights.get(env, weights.get(DEFAULT, 0.0))
    return weight > 0


def _over_env_cap(rows: Rows, kept: list[bool], policy: Policy) -> Iterator[int]:
    """Per environment with a max_rollouts, a seeded random choice of that many of its kept rows."""
    members: dict[int, list[int]] = defaultdict(list)
    for row, code in enumerate(rows.env):
        if kept[row]:
            members[code].append(row)
    for code, group in members.items():
        cap = policy.value(rows.env_names[code], "max_rollouts")
        if cap is not None:
            group.sort(key=lambda row: rows.key[row])
            yield from group[cap:]


def category(rollout: Rollout, path: str) -> str:
    """A rollout's --balance-by category: the field's value, as a string (JSON for anything but a string)."""
    value = rollout.field(path)
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _low_success_rate(rows: Rows, kept: list[bool], rate: float) -> Iterator[int]:
    total: Counter[int] = Counter(rows.prompt)
    wins: Counter[int] = Counter(p for p, s in zip(rows.prompt, rows.success, strict=True) if s)
    return (
        row for row, prompt in enumerate(rows.prompt) if kept[row] and wins[prompt] / total[prompt] < rate
    )


def _repeats(digests: Any, kept: list[bool]) -> Iterator[int]:
    """Kept rows whose digest an earlier kept row has."""
    seen: set[int] = set()
    for row, digest in enumerate(digests):
        if kept[row]:
            if digest in seen:
                yield row
            seen.add(digest)


def _over_cap(rows: Rows, kept: list[bool], cap: int) -> Iterator[int]:
    """A seeded random ``cap`` rollouts per category: the smallest seeded keys, not the first N."""
    members: dict[str, list[int]] = defaultdict(list)
    for row, name in enumerate(rows.column("over_category_cap")):
        if kept[row]:
            members[name].append(row)
    for group in members.values():
        group.sort(key=lambda row: rows.key[row])
        yield from group[cap:]
