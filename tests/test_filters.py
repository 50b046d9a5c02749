"""Quality filters through ``make_sft``: each drops with its reason code, and every line is accounted for
(``lines == written + sum(filtered) + sum(rejected)``). Fixtures are small NeMo Gym files written here."""

from __future__ import annotations

import builtins
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from gym_rollouts import (
    answer,
    call,
    check_sft_accounting,
    ids_by_field,
    read_jsonl,
    result,
    rollout,
    think,
    tool,
    user,
    write_jsonl,
)

from rollforge import filters as filters_module
from rollforge.cli.main import main
from rollforge.decode import LineDecoder
from rollforge.engine.job import Job, Output
from rollforge.errors import RollforgeError
from rollforge.filters import FILTERS, filter_options
from rollforge.io.read import read_rollouts
from rollforge.pipeline import SftOptions, make_sft
from rollforge.reasons import FILTER_REASONS
from rollforge.rollout import Rollout
from rollforge.success import Success
from rollforge.where import Where

# Fixture rollouts are named by their task_id; outputs are mapped back to names through rollout ids.


class FilterOptions(filters_module.FilterOptions):
    """The filters one at a time: the success policy (success-only by default) is off here unless a test
    turns it on, so that each filter is seen alone. Pickled as the library's own class (worker processes)."""

    def __init__(self, **values: Any) -> None:
        super().__init__(**{"success_only": False, **values})

    def __reduce__(self) -> tuple[Any, ...]:
        return (filters_module.FilterOptions, (), dict(self.items()))


def named(task_id: str, output: list[dict[str, Any]], reward: float = 1.0, **kw: Any) -> dict[str, Any]:
    return rollout(f"Question for {task_id}?", output, reward, task_id=task_id, **kw)


def run(
    tmp_path: Path,
    rows: list[dict[str, Any] | str],
    filters: FilterOptions | None = None,
    options: SftOptions | None = None,
    seed: int = 0,
    name: str = "in.jsonl",
) -> tuple[dict[str, Any], list[str]]:
    """make_sft on ``rows``: (accounting, names of the kept rollouts in output order)."""
    src = write_jsonl(tmp_path / name, rows)
    out = tmp_path / f"out-{name}"
    acc = make_sft([src], str(out), filters, options, seed=seed, workers=1, allow_empty=True)
    check_sft_accounting(acc)
    names = ids_by_field(src)
    return acc, [names[row["rollout_id"]] for row in read_jsonl(out)]


def expected(path: str, opts: FilterOptions) -> tuple[Counter, list[str]]:
    """The brute-force verdict: full rollouts from read_rollouts, every per-rollout filter, first failure."""
    filtering = opts.filtering()
    reasons: Counter = Counter()
    kept = []
    for record in read_rollouts([path], LineDecoder(extra_fields=opts.fields)):
        if not isinstance(record, Rollout):
            continue
        reason = filtering.apply(record)
        if reason is None:
            kept.append(record.fields["task_id"])
        else:
            reasons[reason] += 1
    return reasons, kept


# --- reward, success ------------------------------------------------------------------------------------


REWARDS = [named(f"r{r}", [answer(f"answer {r}")], r) for r in (0.0, 0.2, 0.5, 0.8, 1.0)]


@pytest.mark.parametrize(
    ("filters", "kept", "filtered"),
    [
        (FilterOptions(min_reward=0.5), ["r0.5", "r0.8", "r1.0"], {"below_min_reward": 2}),
        (
            FilterOptions(max_reward=0.5),
            ["r0.0", "r0.2", "r0.5"],
            {"above_max_reward": 2},
        ),  # bounds inclusive
        (
            FilterOptions(min_reward=0.2, max_reward=0.8),
            ["r0.2", "r0.5", "r0.8"],
            {"below_min_reward": 1, "above_max_reward": 1},
        ),
        (FilterOptions(), ["r0.0", "r0.2", "r0.5", "r0.8", "r1.0"], {}),
    ],
)
def test_reward_bounds(tmp_path: Path, filters: FilterOptions, kept: list[str], filtered: dict) -> None:
    acc, names = run(tmp_path, REWARDS, filters)
    assert names == kept
    assert acc["filtered"] == filtered


SUCCESS_ROWS = [
    named("low_correct", [answer("a")], 0.2, is_correct=True, judge={"passed": False}),
    named("mid_wrong", [answer("b")], 0.6, is_correct=False, judge={"passed": True}),
    named("top_correct", [answer("c")], 1.0, is_correct=True, judge={"passed": True}),
    named("top_unjudged", [answer("d")], 1.0),  # no such field: not a success by field
]


@pytest.mark.parametrize(
    ("success", "kept"),
    [
        (Success(), ["top_correct", "top_unjudged"]),  # default: reward >= 1.0
        (Success(threshold=0.5), ["mid_wrong", "top_correct", "top_unjudged"]),
        (Success(field="is_correct"), ["low_correct", "top_correct"]),  # the field wins over the reward
        (Success(threshold=0.0, field="judge.passed"), ["mid_wrong", "top_correct"]),  # dotted path
    ],
)
def test_success_only_uses_the_threshold_or_the_named_field(
    tmp_path: Path, success: Success, kept: list[str]
) -> None:
    definition = {"success_threshold": success.threshold, "success_field": success.field}
    acc, names = run(tmp_path, SUCCESS_ROWS, FilterOptions(**definition, success_only=True))
    assert names == kept
    assert acc["filtered"] == {"not_success": 4 - len(kept)}
    # without --success-only the definition filters nothing
    acc, names = run(tmp_path, SUCCESS_ROWS, FilterOptions(**definition))
    assert len(names) == 4 and acc["filtered"] == {}


def test_success_flags_reach_the_filter_from_the_cli() -> None:
    opts = filter_options({"success_threshold": 0.7, "success_field": "is_correct", "success_only": True})
    assert opts.success == Success(threshold=0.7, field="is_correct") and opts.success_only
    assert "is_correct" in opts.fields  # the decoder keeps the field the definition reads


def test_min_task_success_rate_is_per_prompt(tmp_path: Path) -> None:
    def group(prompt: str, rewards: list[float]) -> list[dict[str, Any]]:
        return [
            rollout(f"{prompt}?", [answer(f"{prompt} try {i}")], r, task_id=f"{prompt}{i}")
            for i, r in enumerate(rewards)
        ]

    rows = group("A", [1, 1, 0, 0]) + group("B", [1, 0, 0, 0]) + group("C", [0, 0])
    rows.insert(3, rollout("B?", [answer("cut")], 1.0, truncated=True, task_id="B_cut"))  # counts in B's rate
    acc, names = run(tmp_path, rows, FilterOptions(min_task_success_rate=0.5))
    assert names == ["A0", "A1", "A2", "A3"]
    # B: 2 successes of 5 rollouts (the truncated one included) < 0.5; its truncated rollout keeps its reason
    assert acc["filtered"] == {"low_task_success_rate": 6, "truncated": 1}
    # with --success-only, A's failures go under the per-rollout reason that comes first
    acc, names = run(tmp_path, rows, FilterOptions(min_task_success_rate=0.5, success_only=True))
    assert names == ["A0", "A1"]
    assert acc["filtered"] == {"not_success": 7, "low_task_success_rate": 1, "truncated": 1}
    # success by a named field
    flagged = [dict(r, is_correct=r["task_id"] in {"C0", "C1"}) for r in rows]
    acc, names = run(tmp_path, flagged, FilterOptions(min_task_success_rate=1.0, success_field="is_correct"))
    assert names == ["C0", "C1"]


# --- items, turns, tools, truncation: the head-first path against a brute force on full rollouts --------------

SHAPES = [
    named("plain", [answer("one turn")]),
    named("hidden_only", [think(None)]),  # hidden reasoning and nothing else: no assistant turn
    named("summary_only", [think("a reasoning-only turn")]),
    named("hidden_then_env", [think(None), user("ENV: your move"), answer("move")]),  # 1 turn, not 2
    named("summary_then_env", [think("plan"), user("ENV: your move"), answer("move")]),  # 2 turns
    named("empty_text", [answer("")]),  # an empty assistant message is no turn either
    named(
        "tool_round",
        [call("c1", "search", q="x"), result("c1", "found"), answer("done")],
        tools=[tool("search", "q")],
    ),
    named(
        "mixed",
        [think(None), call("c1", "search", q="y"), result("c1", "r"), think(None), user("ENV"), answer("")],
        tools=[tool("search", "q")],
    ),
    named("game", [answer("hit"), user("ENV 1"), answer("hit"), user("ENV 2"), answer("stand")], 0.5),
    named(
        "unanswered_call",
        [think("submit now"), call("c9", "submit", answer="42")],
        tools=[tool("submit", "answer")],
    ),
    named("truncated", [think("long")], truncated=True),
    named(
        "parallel",
        [
            call("c1", "search", q="a"),
            call("c2", "search", q="b"),
            result("c1", "1"),
            result("c2", "2"),
            answer("both"),
        ],
        0.8,
        tools=[tool("search", "q")],
    ),
    named("empty", []),
    "<PLACEHOLDER ROW>",
]

GRID = (
    [FilterOptions(min_turns=n) for n in (1, 2, 3)]
    + [FilterOptions(max_turns=n) for n in (0, 1, 2)]
    + [
        FilterOptions(min_items=2),
        FilterOptions(max_items=2),
        FilterOptions(min_items=3, max_items=5),
        FilterOptions(require_tool_use=True),
        FilterOptions(drop_truncated=False),
        FilterOptions(min_turns=2, max_turns=2, drop_truncated=False),
        FilterOptions(max_turns=1, require_tool_use=True, min_reward=0.6),
    ]
)


def _label(opts: FilterOptions) -> str:
    default = FilterOptions()
    return ",".join(f"{k}={v}" for k, v in opts.items() if v != getattr(default, k))


@pytest.mark.parametrize("opts", GRID, ids=_label)
def test_cheap_filters_match_a_brute_force_on_full_rollouts(tmp_path: Path, opts: FilterOptions) -> None:
    """The head-first path (no conversion for what cheap filters drop) keeps exactly what the brute force
    keeps and counts each drop under the same reason; so does the full path (forced by
    --min-task-success-rate 0, which drops nothing)."""
    assert Job(filters=opts, sft=(Output(),)).head_first
    acc, names = run(tmp_path, SHAPES, opts)
    reasons, kept = expected(str(tmp_path / "in.jsonl"), opts)
    assert names == kept
    assert acc["filtered"] == dict(reasons)
    assert acc["rejected"] == {"invalid_json": 1}
    full = opts.replace(min_task_success_rate=0.0)
    assert not Job(filters=full, sft=(Output(),)).head_first
    acc_full, names_full = run(tmp_path, SHAPES, full, name="full.jsonl")
    assert names_full == kept
    assert acc_full["filtered"] == dict(reasons)


def test_head_first_reasons_match_the_full_path(tmp_path: Path) -> None:
    opts = FilterOptions(min_turns=2)
    acc, _ = run(tmp_path, SHAPES, opts)
    reasons, _ = expected(str(tmp_path / "in.jsonl"), opts)
    assert acc["filtered"] == dict(reasons)


def test_head_first_does_not_turn_rejects_into_filtered(tmp_path: Path) -> None:
    broken = call("c1", "search")
    broken["arguments"] = "not json"
    rows = [
        named("bad_args", [broken, result("c1", "o"), answer("x")], 0.0),
        named("orphan", [result("zz", "o")], 0.0),
    ]
    acc, _ = run(tmp_path, rows, FilterOptions(min_reward=0.5))
    assert acc["rejected"] == {"invalid_tool_arguments": 1, "orphan_tool_output": 1}


def test_turn_and_item_counts_of_the_shapes(tmp_path: Path) -> None:
    """The facts the brute force relies on: what counts as a turn (a reasoning-only turn with text does)."""
    src = write_jsonl(tmp_path / "in.jsonl", SHAPES)
    turns = {r.fields["task_id"]: r.assistant_turns for r in read_rollouts([src]) if isinstance(r, Rollout)}
    assert turns == {
        "plain": 1,
        "hidden_only": 0,
        "summary_only": 1,
        "hidden_then_env": 1,
        "summary_then_env": 2,
        "empty_text": 0,
        "tool_round": 2,
        "mixed": 1,
        "game": 3,
        "unanswered_call": 1,
        "truncated": 1,
        "parallel": 2,
        "empty": 0,
    }
    acc, names = run(tmp_path, SHAPES, FilterOptions(min_turns=2, min_items=3, min_task_success_rate=0.0))
    assert names == ["summary_then_env", "tool_round", "game", "parallel"]
    assert acc["filtered"] == {"no_assistant_turn": 3, "truncated": 1, "too_few_items": 3, "too_few_turns": 2}


def test_require_tool_use_and_truncation(tmp_path: Path) -> None:
    acc, names = run(tmp_path, SHAPES, FilterOptions(require_tool_use=True, min_task_success_rate=0.0))
    assert names == ["tool_round", "mixed", "unanswered_call", "parallel"]
    assert acc["filtered"]["no_tool_use"] == 5
    incomplete = named("status_only", [answer("cut")])
    incomplete["response"]["status"] = "incomplete"  # no incomplete_details, status alone marks it
    acc, names = run(tmp_path, [*SHAPES, incomplete])
    assert acc["filtered"]["truncated"] == 2 and "truncated" not in names and "status_only" not in names
    acc, names = run(tmp_path, [*SHAPES, incomplete], FilterOptions(drop_truncated=False))
    assert "truncated" in names and "status_only" in names and "truncated" not in acc["filtered"]


def test_drop_truncated_is_on_by_default_and_off_with_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert FilterOptions().drop_truncated and filter_options({}).drop_truncated
    src = write_jsonl(tmp_path / "in.jsonl", SHAPES)
    for flag, dropped in (([], 1), (["--no-drop-truncated"], 0), (["--drop-truncated"], 1)):
        assert main(["sft", src, "-o", str(tmp_path / "o.jsonl"), "--workers", "1", "--json", *flag]) == 0
        acc = json.loads(capsys.readouterr().out)
        assert acc["filtered"].get("truncated", 0) == dropped


def test_the_example_corpus_agrees_with_the_brute_force(tmp_path: Path, examples_dir: Path) -> None:
    for opts in (FilterOptions(min_turns=2, max_turns=4), FilterOptions(max_turns=1, min_items=2)):
        acc = make_sft([str(examples_dir)], str(tmp_path / "o.jsonl"), opts, workers=1)
        check_sft_accounting(acc)
        filtering = opts.filtering()
        want: Counter = Counter()
        kept = []
        for r in read_rollouts([str(examples_dir)]):
            if isinstance(r, Rollout):
                reason = filtering.apply(r)
                want[reason or "kept"] += 1
                if reason is None:
                    kept.append(r.rollout_id)
        assert acc["filtered"] == {k: v for k, v in want.items() if k != "kept"}
        assert [row["rollout_id"] for row in read_jsonl(tmp_path / "o.jsonl")] == kept


# --- --max-tokens: the real length of the rendered chat template ---------------------------------------------


TOKEN_ROW = rollout(
    [user("Is it warm in Paris?")],
    [
        think("Look it up."),
        call("c1", "get_weather", city="Paris"),
        result("c1", "18 degrees"),
        answer("Mild: 18."),
    ],
    instructions="You are a weather bot.",
    tools=[tool("get_weather", "city")],
)
TOKEN_MESSAGES = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": "Is it warm in Paris?"},
    {
        "role": "assistant",
        "content": "",
        "reasoning_content": "Look it up.",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "18 degrees"},
    {"role": "assistant", "content": "Mild: 18."},
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rollforge.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_max_tokens_counts_the_rendered_template_exactly(tmp_path: Path, tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    text = tok.apply_chat_template(TOKEN_MESSAGES, tools=[_chat_weather()], tokenize=False)
    assert "<tool_call>" in text and "Look it up." in text and "18 degrees" in text
    n = len(tok(text, add_special_tokens=False)["input_ids"])
    short = rollout([user("Hi")], [answer("Hello.")], task_id="short")
    rows = [dict(TOKEN_ROW, task_id="long"), short]
    acc, names = run(tmp_path, rows, FilterOptions(max_tokens=n, tokenizer=str(tiny_model)))
    assert names == ["long", "short"] and acc["filtered"] == {}
    acc, names = run(tmp_path, rows, FilterOptions(max_tokens=n - 1, tokenizer=str(tiny_model)))
    assert names == ["short"] and acc["filtered"] == {"too_many_tokens": 1}


def _chat_weather() -> dict[str, Any]:
    from gym_rollouts import chat_tool

    return chat_tool("get_weather", "city")


def test_max_tokens_needs_a_tokenizer(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(RollforgeError, match="--max-tokens needs --tokenizer"):
        filter_options({"max_tokens": 100})
    src = write_jsonl(tmp_path / "in.jsonl", SHAPES)
    assert main(["sft", src, "-o", str(tmp_path / "o.jsonl"), "--max-tokens", "9"]) == 1
    assert "--max-tokens needs --tokenizer" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


# --- --where ---------------------------------------------------------------------------------------------


WHERE_ROWS = [
    named(
        "math_hard",
        [answer("x")],
        0.9,
        metadata={"task_type": "math", "difficulty": "hard"},
        is_correct=True,
        task_name="gsm8k",
        judge={"scores": [0.1, 0.9], "verdict": "PASS"},
    ),
    named(
        "math_easy",
        [answer("y")],
        0.4,
        metadata={"task_type": "math", "difficulty": "easy"},
        is_correct=False,
        task_name="aime",
    ),
    named(
        "code", [answer("z")], 1.0, metadata={"task_type": "code"}, task_name="mbpp", judge={"scores": [1.0]}
    ),
    named("bare", [answer("w")], 0.0),
]


@pytest.mark.parametrize(
    ("expr", "kept"),
    [
        ('metadata.task_type == "math"', ["math_hard", "math_easy"]),
        ('metadata["difficulty"] != "hard"', ["math_easy", "code", "bare"]),  # missing -> None != "hard"
        ('task_name in ["gsm8k", "mbpp"] and reward >= 0.5', ["math_hard", "code"]),
        ("task_name not in ['gsm8k']", ["math_easy", "code", "bare"]),
        ("not is_correct", ["math_easy", "code", "bare"]),  # a missing field is None: falsy
        ("metadata.difficulty is None", ["code", "bare"]),
        ("metadata.nothing.deeper is None and task_id != 'bare'", ["math_hard", "math_easy", "code"]),
        ("judge.scores[1] > 0.5", ["math_hard"]),  # list index; out of range is None, None > 0.5 is no match
        ("len(judge.scores) == 1 or lower(judge.verdict) == 'pass'", ["math_hard", "code"]),
        ("reward * 2 - 1 >= 0.7 or abs(reward - 0.4) < 0.01", ["math_hard", "math_easy", "code"]),
        (
            "max(reward, 0.5) == 0.5 and task_type == 'general'",
            ["bare"],
        ),  # task_type falls back like rollforge's
        ("metadata.task_type > 3", []),  # str > int: a type error is simply "not matched"
        ("prompt_id != '' and rollout_id != ''", ["math_hard", "math_easy", "code", "bare"]),
    ],
)
def test_where_expressions(tmp_path: Path, expr: str, kept: list[str]) -> None:
    acc, names = run(tmp_path, WHERE_ROWS, FilterOptions(where=expr))
    assert names == kept
    assert acc["filtered"] == ({"where_false": 4 - len(kept)} if len(kept) < 4 else {})


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("reward >=", "is not a valid expression"),
        ("__import__('os').system('touch PWNED')", "may be called"),
        ("open('/etc/passwd')", "may be called"),
        ("lambda: 1", "Lambda is not allowed"),
        ("(lambda r: r)(reward)", "may be called"),
        ("reward.__class__", "__class__"),
        ("metadata.__dict__ is None", "__dict__"),
        ("__builtins__", "__builtins__"),
        ("len.__self__", "__self__"),
        ("len", "len"),
        ("[x for x in metadata]", "ListComp is not allowed"),
        ("reward if reward else 0", "IfExp is not allowed"),
        ("reward ** 2 > 1", "Pow is not allowed"),
        ("metadata[task_name]", "subscripts must be literal keys"),
        ("{'a': 1}", "Dict is not allowed"),
        ("f'{reward}' == '1'", "JoinedStr is not allowed"),
        ("(x := 1)", "NamedExpr is not allowed"),
        ("[1, 2][0] == 1", "field"),
    ],
)
def test_where_refuses_what_it_does_not_allow(expr: str, problem: str) -> None:
    with pytest.raises(RollforgeError) as info:
        Where(expr)
    assert problem in str(info.value) and expr in str(info.value)


def test_where_never_evaluates_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    marker = tmp_path / "PWNED"
    src = write_jsonl(tmp_path / "in.jsonl", WHERE_ROWS)
    out = tmp_path / "o.jsonl"
    hostile = f"__import__('os').system('touch {marker}') == 0"
    assert main(["sft", src, "-o", str(out), "--where", hostile, "--workers", "1"]) == 1
    assert "may be called" in capsys.readouterr().err
    assert not marker.exists() and not out.exists()

    # Valid expressions work with eval and exec gone, and the only compile is ast.parse's AST-only one.
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("eval/exec used")

    real_compile = builtins.compile

    def ast_only(source: Any, filename: Any, mode: str, flags: int = 0, *args: Any, **kwargs: Any) -> Any:
        import ast

        assert flags & ast.PyCF_ONLY_AST, "compiled to code, not to an AST"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only)
    where = Where('metadata.task_type == "math" and len(task_name) > 4')
    rollouts = [
        r for r in read_rollouts([src], LineDecoder(extra_fields=where.roots)) if isinstance(r, Rollout)
    ]
    assert [where(r) for r in rollouts] == [True, False, False, False]


def test_where_on_prompt_id_waits_for_the_converted_prompt(tmp_path: Path) -> None:
    """A Head has no prompt_id (it needs the converted prompt): the head-first path must not judge it."""
    rows = [named("a", [answer("x")]), named("b", [answer("y")])]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    pid = next(
        r.prompt_id for r in read_rollouts([src]) if isinstance(r, Rollout) and r.fields["task_id"] == "a"
    )
    acc, names = run(tmp_path, rows, FilterOptions(where=f"prompt_id == {pid!r}"))
    assert names == ["a"] and acc["filtered"] == {"where_false": 1}


def test_where_pickles_by_source() -> None:
    import pickle

    where = Where("metadata.task_type == 'math'")
    again = pickle.loads(pickle.dumps(where))
    assert again.source == where.source and again.roots == {"metadata"}


# --- dedup ---------------------------------------------------------------------------------------------


VOCAB = [
    "invoice",
    "quarter",
    "total",
    "refund",
    "policy",
    "ledger",
    "budget",
    "manager",
    "project",
    "team",
    "report",
    "check",
    "verify",
    "answer",
]
_RNG = random.Random(7)
LONG = " ".join(_RNG.choice(VOCAB) for _ in range(300))  # about 300 distinct 3-grams


def test_dedup_exact_keeps_the_first_kept_copy(tmp_path: Path) -> None:
    rows = [
        named("a0", [answer(LONG)], 0.0, _ng_rollout_index=0),
        named("a1", [answer(LONG)], 1.0, _ng_rollout_index=1),
        named("a2", [answer(LONG)], 1.0, _ng_rollout_index=2),
        named("b", [answer("Something else entirely.")], 1.0),
    ]
    for row in rows[1:3]:
        row["responses_create_params"]["input"] = rows[0]["responses_create_params"]["input"]
    for row in rows:
        row.pop("task_id")
    for i, row in enumerate(rows):
        row["metadata"] = {"n": i}  # not part of the conversation: still duplicates
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    ids = list(ids_by_field(src, "metadata"))
    out = tmp_path / "o.jsonl"
    acc = make_sft([src], str(out), FilterOptions(dedup="exact"), workers=1)
    check_sft_accounting(acc)
    assert acc["filtered"] == {"duplicate": 2}
    assert [r["rollout_id"] for r in read_jsonl(out)] == [ids[0], ids[3]]
    # a copy filtered for another reason is not "kept", so the next copy is no duplicate of it
    acc = make_sft([src], str(out), FilterOptions(dedup="exact", min_reward=0.5), workers=1)
    assert acc["filtered"] == {"below_min_reward": 1, "duplicate": 1}
    assert [r["rollout_id"] for r in read_jsonl(out)] == [ids[1], ids[3]]


def test_dedup_near_catches_a_one_word_change(tmp_path: Path) -> None:
    words = LONG.split()
    changed = " ".join([*words[:150], "REVISED", *words[151:]])
    prompt = "Which quarter had the highest total?"
    rows = [
        rollout(prompt, [answer(LONG)], task_id="original"),
        rollout(prompt, [answer(changed)], task_id="one_word"),
        rollout(
            prompt, [answer(" ".join(reversed(words)))], task_id="reordered"
        ),  # same words, other 3-grams
        rollout(prompt, [answer("A short and unrelated reply about the weather.")], task_id="other"),
    ]
    acc, names = run(tmp_path, rows, FilterOptions(dedup="near"))
    assert names == ["original", "reordered", "other"]
    assert acc["filtered"] == {"near_duplicate": 1}
    acc, names = run(tmp_path, rows, FilterOptions(dedup="exact"))
    assert len(names) == 4 and acc["filtered"] == {}


def test_dedup_near_reads_tool_calls_and_reasoning(tmp_path: Path, examples_dir: Path) -> None:
    search = [tool("search", "q")]
    steps = [think(LONG), call("c1", "search", q="ledger"), result("c1", "3 rows"), answer("Q2.")]
    rows = [
        rollout("Which quarter?", steps, task_id="first", tools=search),
        rollout("Which quarter?", [*steps[:3], answer("Q2!")], task_id="same_work", tools=search),
        rollout("Which quarter?", [think("short"), *steps[1:]], task_id="other_reasoning", tools=search),
    ]
    acc, names = run(tmp_path, rows, FilterOptions(dedup="near"))
    assert names == ["first", "other_reasoning"] and acc["filtered"] == {"near_duplicate": 1}
    # the whole example corpus: rollouts are distinct, and the accounting still adds up
    acc = make_sft([str(examples_dir)], str(tmp_path / "o.jsonl"), FilterOptions(dedup="near"), workers=1)
    check_sft_accounting(acc)
    assert acc["filtered"].get("near_duplicate", 0) < acc["written"]


# --- review labels ------------------------------------------------------------------------------------


def test_labels_drop_what_a_reviewer_rejected(tmp_path: Path) -> None:
    from rollforge.labels import LabelStore

    rows = [named(f"t{i}", [answer(f"answer {i}")]) for i in range(5)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    ids = {name: rid for rid, name in ids_by_field(src).items()}
    db = tmp_path / "review.sqlite"
    store = LabelStore(db)
    store.set_label(ids["t1"], "reject", "wrong answer", "alice")
    store.set_label(ids["t2"], "reject", "", "alice")
    store.set_label(ids["t2"], "accept", "on second thought", "bob")  # the current label counts
    store.set_label(ids["t3"], "flag", "", "alice")
    store.set_label("0123456789abcdef", "reject", "", "alice")  # a rollout not in this input
    acc, names = run(tmp_path, rows, FilterOptions(labels=str(db)))
    assert names == ["t0", "t2", "t4"]  # a flag is a doubt: never trained on
    assert acc["filtered"] == {"review_rejected": 1, "review_flagged": 1}
    # the full path (no head-first) agrees
    acc, names = run(tmp_path, rows, FilterOptions(labels=str(db), min_task_success_rate=0.0), name="b.jsonl")
    assert names == ["t0", "t2", "t4"] and acc["filtered"] == {"review_rejected": 1, "review_flagged": 1}
    # --labels-keep accept: only what a reviewer accepted
    acc, names = run(tmp_path, rows, FilterOptions(labels=str(db), labels_keep="accept"), name="c.jsonl")
    assert names == ["t2"]
    assert acc["filtered"] == {"review_rejected": 1, "review_flagged": 1, "not_accepted": 2}


def test_labels_refuse_a_database_that_is_not_a_review_db(tmp_path: Path) -> None:
    import sqlite3

    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE labels (x)").connection.commit()
    with pytest.raises(RollforgeError, match="not a rollforge review database"):
        run(tmp_path, [named("t", [answer("a")])], FilterOptions(labels=str(other)))
    with pytest.raises(RollforgeError, match="no review database"):
        run(tmp_path, [named("t", [answer("a")])], FilterOptions(labels=str(tmp_path / "missing.sqlite")))


# --- --balance-by / --max-per-category ---------------------------------------------------------------------


def test_balance_by_is_a_seeded_random_choice(tmp_path: Path) -> None:
    rows = [named(f"a{i:02d}", [answer(f"a {i}")], metadata={"cat": "a"}) for i in range(12)]
    rows += [named(f"b{i}", [answer(f"b {i}")], metadata={"cat": "b"}) for i in range(3)]
    rows.insert(5, named("a_low", [answer("low")], 0.0, metadata={"cat": "a"}))
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    by_id = ids_by_field(src)
    # the cap counts only rollouts the other filters keep
    filters = FilterOptions(min_reward=0.5, balance_by="metadata.cat", max_per_category=4)

    def kept(seed: int, path: str = src) -> list[str]:
        out = tmp_path / f"o{seed}.jsonl"
        acc = make_sft([path], str(out), filters, seed=seed, workers=1)
        check_sft_accounting(acc)
        assert acc["filtered"] == {"below_min_reward": 1, "over_category_cap": 8}
        return [by_id[r["rollout_id"]] for r in read_jsonl(out)]

    choices = {seed: kept(seed) for seed in range(6)}
    for seed, names in choices.items():
        a = [n for n in names if n.startswith("a")]
        assert (
            len(a) == 4 and "a_low" not in a and [n for n in names if n.startswith("b")] == ["b0", "b1", "b2"]
        )
        assert names == sorted(names, key=[r["task_id"] for r in rows].index)  # output stays in input order
        # exactly the 4 smallest seeded keys of the category
        job = Job(seed=seed)
        pool = [rid for rid, name in by_id.items() if name.startswith("a") and name != "a_low"]
        assert set(a) == {by_id[rid] for rid in sorted(pool, key=job.key)[:4]}
    assert kept(0) == choices[0]  # same seed, same result
    assert len({tuple(v) for v in choices.values()}) > 1  # different seeds, different subsets
    first_four = ["a00", "a01", "a02", "a03"]
    assert any([n for n in v if n.startswith("a")] != first_four for v in choices.values())  # not first-N
    # the choice does not depend on input order
    reordered = write_jsonl(tmp_path / "reversed.jsonl", list(reversed(rows)))
    assert sorted(kept(3, reordered)) == sorted(choices[3])


# --- precedence ------------------------------------------------------------------------------------------


def test_the_order_of_reasons_is_fixed() -> None:
    """Declaration order is counting order: the first filter a rollout fails, per-rollout filters (cheap
    first, the tokenizer last) before those that need every rollout; the codes follow it too."""
    assert [f.reason for f in FILTERS] == [
        "no_assistant_turn",
        "review_rejected",
        "review_flagged",
        "not_accepted",
        "truncated",
        "below_min_reward",
        "above_max_reward",
        "not_success",
        "too_few_items",
        "too_many_items",
        "too_few_turns",
        "too_many_turns",
        "no_tool_use",
        "where_false",
        "contaminated",
        "too_much_reasoning",
        "too_many_tokens",
        "not_in_mix",
        "low_task_success_rate",
        "duplicate",
        "near_duplicate",
        "over_category_cap",
        "over_env_cap",
        "over_mix_share",
    ]
    assert list(FILTER_REASONS)[: len(FILTERS)] == [f.reason for f in FILTERS]
    per_rollout = [f.needs.per_rollout for f in FILTERS]
    assert per_rollout == sorted(per_rollout, reverse=True)


def test_a_rollout_failing_many_filters_counts_under_the_first(tmp_path: Path) -> None:
    bad = named(
        "bad", [think("long")], 0.1, truncated=True, metadata={"task_type": "x"}
    )  # truncated, low, no tool
    worse = named("worse", [], 0.1, truncated=True)  # no assistant turn comes before everything
    hidden = named(
        "hidden", [think(None)], 0.1, truncated=True
    )  # nor does a hidden reasoning-only turn count
    rows = [bad, worse, hidden, named("good", [call("c", "f"), result("c", "o"), answer("ok")], 1.0)]
    opts = FilterOptions(min_reward=0.5, require_tool_use=True, where="reward > 0.5", success_only=True)
    for variant in (opts, opts.replace(min_task_success_rate=0.0), opts.replace(dedup="exact")):
        acc, names = run(tmp_path, rows, variant)
        assert names == ["good"]
        assert acc["filtered"] == {"truncated": 1, "no_assistant_turn": 2}
    acc, names = run(tmp_path, rows, opts.replace(drop_truncated=False))
    assert acc["filtered"] == {"below_min_reward": 1, "no_assistant_turn": 2}
    # set-level reasons come after every per-rollout one, in a fixed order: task rate, duplicates, caps
    dup = [named("d", [answer("same")], 0.0), named("d", [answer("same")], 0.0, _ng_rollout_index=1)]
    acc, names = run(tmp_path, dup, FilterOptions(min_task_success_rate=0.5, dedup="exact"))
    assert acc["filtered"] == {"low_task_success_rate": 2}


# --- --max-reasoning-chars: decoded characters of the model's reasoning ------------------------------------------

REASONING_ROWS = [
    named("accents", [think("é" * 50), answer("yes")]),  # written as \u00e9: 6 bytes of JSON a character
    named("two_turns", [think("a" * 30), user("ENV: again"), think("b" * 30), answer("ok")]),
    named("inline", [answer("<think>" + "c" * 40 + "</think>done")]),  # inline tags are reasoning too
    named("history", [answer("d")], instructions="sys"),
    named("none", [answer("no reasoning at all")]),
]
REASONING_ROWS[3]["responses_create_params"]["input"] = [
    {"type": "message", "role": "user", "content": "q"},
    {
        "type": "message",
        "role": "assistant",
        "content": "<think>" + "e" * 99 + "</think>earlier",
    },  # the prompt's
    {"type": "message", "role": "user", "content": "again"},
]


@pytest.mark.parametrize(
    ("limit", "kept", "dropped"),
    [
        (60, ["accents", "two_turns", "inline", "history", "none"], 0),
        (50, ["accents", "inline", "history", "none"], 1),  # 60 over two turns is too much
        (40, ["inline", "history", "none"], 2),
        (0, ["history", "none"], 3),  # the prompt's reasoning is not this rollout's
    ],
)
def test_max_reasoning_chars_counts_decoded_characters(
    tmp_path: Path, limit: int, kept: list, dropped: int
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", REASONING_ROWS)
    assert "\\u00e9" * 50 in Path(src).read_text()  # the bytes a Raw-text length would count: 300, not 50
    opts = FilterOptions(max_reasoning_chars=limit)
    acc, names = run(tmp_path, REASONING_ROWS, opts)
    assert names == kept
    assert acc["filtered"] == ({"too_much_reasoning": dropped} if dropped else {})
    reasons, expected_kept = expected(src, opts)  # the brute force on plain-text rollouts agrees
    assert expected_kept == kept and dict(reasons) == acc["filtered"]
    acc, names = run(
        tmp_path, REASONING_ROWS, opts.replace(min_reward=0.5, min_task_success_rate=0.0), name="b.jsonl"
    )
    assert names == kept  # the full path (no first look) and after a first-look filter: the same


def test_max_reasoning_chars_from_the_cli_a_recipe_and_for_dpo(
    tmp_path: Path, capsys: pytest.CaptureFixture, examples_dir: Path
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", REASONING_ROWS)
    assert main(["sft", src, "-o", str(tmp_path / "o.jsonl"), "--max-reasoning-chars", "45", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["filtered"] == {"too_much_reasoning": 2}
    assert "--max-reasoning-chars N" in " ".join(build_parser_help("sft").split())
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"inputs: [{examples_dir}]\noutput: {tmp_path / 'rel'}\nmax_reasoning_chars: 0\n")
    assert main(["build", str(recipe), "--json", "--quiet"]) == 0
    acc = json.loads(capsys.readouterr().out)["accounting"]
    assert (
        acc["sft"]["filtered"]["too_much_reasoning"] > 0 and acc["dpo"]["filtered"]["too_much_reasoning"] > 0
    )
    rows = read_jsonl(tmp_path / "rel" / "v1" / "sft" / "train.jsonl")
    assert rows and all("reasoning_content" not in m for row in rows for m in row["messages"][1:])


def build_parser_help(command: str) -> str:
    import argparse

    from rollforge.cli.main import build_parser

    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help()
