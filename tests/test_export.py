"""Every SFT and DPO format, written from NeMo Gym rollouts with tool calls, reasoning, environment user
turns and parallel calls: exact rows for small fixtures, and the fast DPO assembly against a slow reference."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest
from gym_rollouts import (
    answer,
    call,
    chat_tool,
    check_sft_accounting,
    ids_by_field,
    read_jsonl,
    result,
    rollout,
    said,
    system,
    think,
    tool,
    user,
    write_jsonl,
)

from rollforge.decode import LineDecoder
from rollforge.engine.job import to_record
from rollforge.environments import environment_of
from rollforge.export.dpo import PairInfo, pieces
from rollforge.export.formats import format_named
from rollforge.export.sft import Skip
from rollforge.filters import FilterOptions
from rollforge.io.read import read_rollouts
from rollforge.pipeline import DpoOptions, SftOptions, make_dpo, make_sft
from rollforge.rollout import Rollout

# --- fixtures ------------------------------------------------------------------------------------------------

TOOLS = [tool("get_weather", "city"), tool("search", "query")]
CHAT_TOOLS = [chat_tool("get_weather", "city"), chat_tool("search", "query")]

# Reasoning + a call; its output; reasoning + text + a parallel pair of calls; their outputs; the answer.
TOOLS_ROW = rollout(
    [user("Warmer in Paris or Rome?")],
    [
        think("Check Paris first."),
        call("c1", "get_weather", city="Paris"),
        result("c1", "18C"),
        think("Now Rome and a search, in parallel."),
        answer("Checking."),
        call("c2", "get_weather", city="Rome"),
        call("c3", "search", query="Rome heat"),
        result("c2", "25C"),
        result("c3", "no heatwave"),
        answer("Rome is warmer."),
    ],
    1.0,
    tools=TOOLS,
    instructions="You are a weather bot.",
    task_id="tools",
)
# A game: inline <think>, environment user turns inside the output, and a trailing environment turn.
GAME_ROW = rollout(
    "Hit or stand on 16?",
    [answer("<think>16 is low.</think>hit"), user("You drew 3: 19."), answer("stand"), user("You win.")],
    0.5,
    task_id="game",
)
# History the model did not write in this rollout: an assistant message on the prompt side.
HISTORY_ROW = rollout(
    [system("Be brief."), user("Hi"), said("Hello! How can I help?"), user("What is 2+2?")],
    [answer("4")],
    1.0,
    task_id="history",
)
# Ends on a tool output (the final call's answer came back but the model never spoke again).
DANGLING_ROW = rollout(
    "Look up Oslo.", [call("c9", "get_weather", city="Oslo"), result("c9", "-3C")], 0.0, tools=TOOLS[:1]
)

PAR_CALL = {
    "id": "c1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
}
ROME_CALL = {
    "id": "c2",
    "type": "function",
    "function": {"name": "get_weather", "arguments": {"city": "Rome"}},
}
HEAT_CALL = {
    "id": "c3",
    "type": "function",
    "function": {"name": "search", "arguments": {"query": "Rome heat"}},
}
OSLO_CALL = {
    "id": "c9",
    "type": "function",
    "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
}

# Every rollout, failures too (the success policy aside): each format is checked on every shape.
EVERY = FilterOptions(success_only=False)


def string_args(c: dict[str, Any]) -> dict[str, Any]:
    """A call with its arguments as the JSON string the rollout held (json.dumps spacing, as written)."""
    return {**c, "function": {**c["function"], "arguments": json.dumps(c["function"]["arguments"])}}


def tool_msg(call_id: str, name: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


TOOLS_MESSAGES = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": "Warmer in Paris or Rome?"},
    {"role": "assistant", "content": "", "reasoning_content": "Check Paris first.", "tool_calls": [PAR_CALL]},
    tool_msg("c1", "get_weather", "18C"),
    {
        "role": "assistant",
        "content": "Checking.",
        "reasoning_content": "Now Rome and a search, in parallel.",
        "tool_calls": [ROME_CALL, HEAT_CALL],
    },
    tool_msg("c2", "get_weather", "25C"),
    tool_msg("c3", "search", "no heatwave"),
    {"role": "assistant", "content": "Rome is warmer."},
]
GAME_MESSAGES = [
    {"role": "user", "content": "Hit or stand on 16?"},
    {"role": "assistant", "content": "hit", "reasoning_content": "16 is low."},
    {"role": "user", "content": "You drew 3: 19."},
    {"role": "assistant", "content": "stand"},
]  # the trailing "You win." is trimmed: an SFT row ends on the model's turn
HISTORY_MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
]
DANGLING_MESSAGES = [
    {"role": "user", "content": "Look up Oslo."},
    {"role": "assistant", "content": "", "tool_calls": [OSLO_CALL]},
]


def sft(
    tmp_path: Path, fmt: str, reasoning: str | None = None, rows: list | None = None
) -> tuple[dict, list[dict]]:
    src = write_jsonl(tmp_path / "in.jsonl", rows or [TOOLS_ROW, GAME_ROW, HISTORY_ROW, DANGLING_ROW])
    out = tmp_path / f"{fmt}.jsonl"
    acc = make_sft([src], str(out), EVERY, options=SftOptions(format=fmt, reasoning=reasoning), workers=1)
    check_sft_accounting(acc)
    return acc, read_jsonl(out)


# --- SFT: trl, nemo-rl, openai -----------------------------------------------------------------------------


def test_trl_rows(tmp_path: Path) -> None:
    acc, rows = sft(tmp_path, "trl")
    src = tmp_path / "in.jsonl"
    ids = {name: rid for rid, name in ids_by_field(src).items()}
    assert [r["messages"] for r in rows] == [
        TOOLS_MESSAGES,
        GAME_MESSAGES,
        HISTORY_MESSAGES,
        DANGLING_MESSAGES,
    ]
    assert isinstance(rows[0]["tools"], str) and json.loads(rows[0]["tools"]) == CHAT_TOOLS  # a JSON string
    assert [r["tools"] for r in rows[1:3]] == ["[]", "[]"]
    assert [r["rollout_id"] for r in rows[:3]] == [ids["tools"], ids["game"], ids["history"]]
    assert [r["reward"] for r in rows] == [1.0, 0.5, 1.0, 0.0]
    assert {r["task_type"] for r in rows} == {"general"}
    prompt_ids = {r.rollout_id: r.prompt_id for r in read_rollouts([str(src)]) if isinstance(r, Rollout)}
    assert all(r["prompt_id"] == prompt_ids[r["rollout_id"]] for r in rows)
    assert set(rows[0]) == {"messages", "tools", "prompt_id", "rollout_id", "reward", "task_type", "env"}
    assert {r["env"] for r in rows} == {src.name.removesuffix(".jsonl")}  # no agent_ref: the file's stem
    assert acc["export"] == {"trimmed_trailing_messages": 2}  # "You win." and the dangling tool output


def test_nemo_rl_rows_end_on_the_assistant(tmp_path: Path) -> None:
    acc, rows = sft(tmp_path, "nemo-rl")
    assert rows == [
        {"messages": TOOLS_MESSAGES, "tools": CHAT_TOOLS},
        {"messages": GAME_MESSAGES, "tools": []},
        {"messages": HISTORY_MESSAGES, "tools": []},
        {"messages": DANGLING_MESSAGES, "tools": [CHAT_TOOLS[0]]},
    ]
    assert all(r["messages"][-1]["role"] == "assistant" for r in rows)
    assert acc["export"] == {"trimmed_trailing_messages": 2}


def think_text(reasoning: str, content: str) -> str:
    return f"<think>\n{reasoning}\n</think>\n\n{content}"


def without_name(message: dict[str, Any]) -> dict[str, Any]:
    """A tool message as OpenAI's fine-tuning schema has it: tool_call_id and content, no name."""
    return {k: v for k, v in message.items() if k != "name"}


def test_openai_rows(tmp_path: Path) -> None:
    _, rows = sft(tmp_path, "openai")
    assert rows[0] == {
        "messages": [
            TOOLS_MESSAGES[0],
            TOOLS_MESSAGES[1],
            {
                "role": "assistant",
                "content": think_text("Check Paris first.", ""),
                "tool_calls": [string_args(PAR_CALL)],
                "weight": 1,
            },
            without_name(TOOLS_MESSAGES[3]),
            {
                "role": "assistant",
                "content": think_text("Now Rome and a search, in parallel.", "Checking."),
                "tool_calls": [string_args(ROME_CALL), string_args(HEAT_CALL)],
                "weight": 1,
            },
            without_name(TOOLS_MESSAGES[5]),
            without_name(TOOLS_MESSAGES[6]),
            {"role": "assistant", "content": "Rome is warmer.", "weight": 1},
        ],
        "tools": CHAT_TOOLS,
        "parallel_tool_calls": True,
    }
    assert rows[1] == {
        "messages": [
            GAME_MESSAGES[0],
            {"role": "assistant", "content": think_text("16 is low.", "hit"), "weight": 1},
            GAME_MESSAGES[2],
            {"role": "assistant", "content": "stand", "weight": 1},
        ],
        "tools": [],
        "parallel_tool_calls": False,
    }
    # the prompt-side assistant message is context: weight 0; what this rollout generated: weight 1
    assert [m.get("weight") for m in rows[2]["messages"]] == [None, None, 0, None, 1]
    assert rows[2]["messages"][2] == {"role": "assistant", "content": "Hello! How can I help?", "weight": 0}
    for row in rows:
        for msg in row["messages"]:
            for c in msg.get("tool_calls", ()):
                assert isinstance(c["function"]["arguments"], str)
                assert isinstance(json.loads(c["function"]["arguments"]), dict)


@pytest.mark.parametrize(
    ("mode", "first", "second"),
    [
        (
            "field",
            {"content": "", "reasoning_content": "Check Paris first."},
            {"content": "hit", "reasoning_content": "16 is low."},
        ),
        (
            "think",
            {"content": think_text("Check Paris first.", "")},
            {"content": think_text("16 is low.", "hit")},
        ),
        ("drop", {"content": ""}, {"content": "hit"}),
    ],
)
@pytest.mark.parametrize("fmt", ["trl", "nemo-rl"])
def test_reasoning_modes(tmp_path: Path, fmt: str, mode: str, first: dict, second: dict) -> None:
    _, rows = sft(tmp_path, fmt, mode)
    assert rows[0]["messages"][2] == {"role": "assistant", **first, "tool_calls": [PAR_CALL]}
    assert rows[1]["messages"][1] == {"role": "assistant", **second}
    # a message without reasoning is left as it was in every mode
    assert rows[0]["messages"][-1] == {"role": "assistant", "content": "Rome is warmer."}


def test_openai_reasoning_field_mode_keeps_the_field(tmp_path: Path) -> None:
    _, rows = sft(tmp_path, "openai", "field")
    assert rows[1]["messages"][1] == {
        "role": "assistant",
        "content": "hit",
        "reasoning_content": "16 is low.",
        "weight": 1,
    }


def test_rows_that_end_on_no_assistant_turn_are_trimmed_and_counted(tmp_path: Path) -> None:
    many = rollout("Go.", [answer("a"), user("ENV 1"), user("ENV 2"), user("ENV 3")], 1.0)
    acc, rows = sft(tmp_path, "trl", rows=[many, DANGLING_ROW])
    assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]
    assert acc["export"] == {"trimmed_trailing_messages": 3 + 1}


# --- sharegpt (LLaMA-Factory) ----------------------------------------------------------------------------


def llamafactory_parse(example: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, str]] | None:
    """What LLaMA-Factory's SharegptDatasetConverter does with a row, driven by the dataset_info.json entry:
    the aligned messages, or None for a row it drops as broken (roles must alternate user/observation with
    assistant/function, and a non-ranking conversation must have an even number of turns)."""
    tags, columns = entry["tags"], entry["columns"]
    role, content = tags["role_tag"], tags["content_tag"]
    mapping = {
        tags["user_tag"]: "user",
        tags["assistant_tag"]: "assistant",
        tags["observation_tag"]: "observation",
        tags["function_tag"]: "function",
    }
    accept = ((tags["user_tag"], tags["observation_tag"]), (tags["assistant_tag"], tags["function_tag"]))
    aligned = []
    for i, turn in enumerate(example[columns["messages"]]):
        if turn[role] not in accept[i % 2]:
            return None
        aligned.append({"role": mapping[turn[role]], "content": turn[content]})
    return None if len(aligned) % 2 else aligned


def test_sharegpt_rows_alternate_and_register_in_dataset_info(tmp_path: Path) -> None:
    acc, rows = sft(tmp_path, "sharegpt")
    tools_turns = [
        {"from": "human", "value": "Warmer in Paris or Rome?"},
        {"from": "function_call", "value": '{"name":"get_weather","arguments":{"city":"Paris"}}'},
        {"from": "observation", "value": "18C"},
        {
            "from": "function_call",
            "value": '[{"name":"get_weather","arguments":{"city":"Rome"}},'
            '{"name":"search","arguments":{"query":"Rome heat"}}]',
        },
        {"from": "observation", "value": "25C\n</tool_response>\n<tool_response>\nno heatwave"},
        {"from": "gpt", "value": "Rome is warmer."},
    ]
    assert rows[0] == {
        "conversations": tools_turns,
        "system": "You are a weather bot.",
        "tools": json.dumps(CHAT_TOOLS, separators=(",", ":")),
    }
    assert rows[1] == {
        "conversations": [
            {"from": "human", "value": "Hit or stand on 16?"},
            {
                "from": "gpt",
                "value": think_text("16 is low.", "hit"),
            },  # no reasoning field: inline by default
            {"from": "human", "value": "You drew 3: 19."},
            {"from": "gpt", "value": "stand"},
        ],
        "system": "",
        "tools": "[]",
    }
    assert (
        rows[2]["system"] == "Be brief."
        and [t["from"] for t in rows[2]["conversations"]] == ["human", "gpt"] * 2
    )
    assert acc["export"] == {"trimmed_trailing_messages": 2, "sharegpt_text_beside_calls": 2}

    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert list(info) == ["sharegpt"] and info["sharegpt"]["file_name"] == "sharegpt.jsonl"
    assert info["sharegpt"]["formatting"] == "sharegpt"
    entry = info["sharegpt"]
    for row in read_jsonl(tmp_path / entry["file_name"]):
        aligned = llamafactory_parse(row, entry)
        assert aligned is not None, row
        assert aligned[-1]["role"] in ("assistant", "function")  # the model speaks last
        for turn in aligned:
            if (
                turn["role"] == "function"
            ):  # LLaMA-Factory json.loads it: {"name", "arguments": {...}} or a list
                calls = json.loads(turn["content"])
                for c in calls if isinstance(calls, list) else [calls]:
                    assert set(c) == {"name", "arguments"} and isinstance(c["arguments"], dict)
        assert isinstance(json.loads(row[entry["columns"]["tools"]]), list)


def test_sharegpt_filters_what_it_cannot_represent(tmp_path: Path) -> None:
    late_system = rollout([user("Hi"), system("Now answer in French.")], [answer("Bonjour")], 1.0)
    image = rollout(
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ],
            }
        ],
        [answer("A cat.")],
    )
    merged = rollout([user("Part one."), user("Part two.")], [answer("Both read.")])
    acc, rows = sft(tmp_path, "sharegpt", rows=[late_system, image, merged, HISTORY_ROW])
    assert acc["filtered"] == {"not_representable_in_sharegpt": 2}
    assert acc["written"] == 2 and acc["export"]["sharegpt_merged_turns"] == 1
    assert rows[0]["conversations"][0] == {"from": "human", "value": "Part one.\n\nPart two."}
    # the other formats hold both
    acc, rows = sft(tmp_path, "trl", rows=[late_system, image])
    assert acc["written"] == 2 and rows[1]["messages"][0]["content"][1]["type"] == "image_url"


# --- DPO -----------------------------------------------------------------------------------------------------

WEATHER_PROMPT = [system("You are a weather bot."), user("Weather in Paris?")]
SHARED_STEPS = [call("c1", "get_weather", city="Paris"), result("c1", "18C")]
DPO_ROWS = [
    rollout(
        WEATHER_PROMPT, [*SHARED_STEPS, answer("Paris: 18C, mild.")], 1.0, tools=TOOLS[:1], task_id="w_good"
    ),
    rollout(WEATHER_PROMPT, [answer("Probably warm.")], 0.5, tools=TOOLS[:1], task_id="w_guess"),
    rollout(WEATHER_PROMPT, [*SHARED_STEPS, answer("No idea.")], 0.0, tools=TOOLS[:1], task_id="w_bad"),
    rollout(
        "Hit or stand on 16?",
        [answer("hit"), user("You drew 3: 19."), answer("stand"), user("You win.")],
        1.0,
        task_id="g_win",
    ),
    rollout("Hit or stand on 16?", [answer("<think>Risky.</think>stand")], -1.0, task_id="g_lose"),
    rollout("What is 2+2?", [think("Add them."), answer("4")], 1.0, task_id="m_right"),
    rollout("What is 2+2?", [answer("5")], 0.0, task_id="m_wrong"),
    rollout(
        "Find both.",
        [call("p1", "search", query="a"), call("p2", "search", query="b")],
        1.0,
        tools=TOOLS[1:],
        task_id="p_calls",
    ),
    rollout("Find both.", [answer("Nothing found.")], 0.0, tools=TOOLS[1:], task_id="p_none"),
]


def dpo(
    tmp_path: Path, fmt: str, split: bool = False, reasoning: str | None = None
) -> tuple[dict, list, dict]:
    src = write_jsonl(tmp_path / "dpo-in.jsonl", DPO_ROWS)
    out = tmp_path / f"dpo-{fmt}.jsonl"
    options = DpoOptions(format=fmt, split_at_divergence=split, reasoning=reasoning)
    acc = make_dpo([src], str(out), EVERY, options=options, workers=1)
    return acc, read_jsonl(out), ids_by_field(src)


def test_trl_dpo_rows(tmp_path: Path) -> None:
    acc, rows, names = dpo(tmp_path, "trl")
    assert (acc["prompts"], acc["pairs"], acc["written"], acc["unpaired"]) == (4, 4, 4, {})
    assert [(names[r["chosen_id"]], names[r["rejected_id"]]) for r in rows] == [
        ("w_good", "w_bad"),
        ("g_win", "g_lose"),
        ("m_right", "m_wrong"),
        ("p_calls", "p_none"),
    ]
    weather = rows[0]
    assert weather["prompt"] == [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    assert weather["chosen"] == [
        {"role": "assistant", "content": "", "tool_calls": [PAR_CALL]},
        tool_msg("c1", "get_weather", "18C"),
        {"role": "assistant", "content": "Paris: 18C, mild."},
    ]
    assert weather["rejected"] == [
        {"role": "assistant", "content": "", "tool_calls": [PAR_CALL]},
        tool_msg("c1", "get_weather", "18C"),
        {"role": "assistant", "content": "No idea."},
    ]
    assert json.loads(weather["tools"]) == CHAT_TOOLS[:1]
    assert (weather["chosen_reward"], weather["rejected_reward"], weather["margin"]) == (1.0, 0.0, 1.0)
    game = rows[1]
    assert game["chosen"] == [
        {"role": "assistant", "content": "hit"},
        {"role": "user", "content": "You drew 3: 19."},
        {"role": "assistant", "content": "stand"},
    ]  # the trailing environment turn is trimmed
    assert game["rejected"] == [{"role": "assistant", "content": "stand", "reasoning_content": "Risky."}]
    assert game["margin"] == 2.0 and game["tools"] == "[]"
    assert len({r["prompt_id"] for r in rows}) == 4


def test_split_at_divergence_moves_the_shared_start_into_the_prompt(tmp_path: Path) -> None:
    acc, rows, _ = dpo(tmp_path, "trl", split=True)
    weather = rows[0]
    assert weather["prompt"] == [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [PAR_CALL]},
        tool_msg("c1", "get_weather", "18C"),
    ]
    assert weather["chosen"] == [{"role": "assistant", "content": "Paris: 18C, mild."}]
    assert weather["rejected"] == [{"role": "assistant", "content": "No idea."}]
    assert acc["export"] == {"split_at_divergence": 1}  # the other pairs differ from their first message
    _, plain, _ = dpo(tmp_path, "trl")
    assert rows[1:] == plain[1:]
    # openai can now hold the weather pair: each side is one assistant message
    acc, rows, _ = dpo(tmp_path, "openai", split=True)
    assert acc["written"] == 3 and acc["skipped"] == {"not_single_assistant_message": 1}  # the game pair
    assert [m["role"] for m in rows[0]["input"]["messages"]] == ["system", "user", "assistant", "tool"]
    assert rows[0]["input"]["messages"][2]["tool_calls"] == [string_args(PAR_CALL)]
    # the tool message moved into the prompt is in OpenAI's schema too: no name
    assert rows[0]["input"]["messages"][3] == without_name(tool_msg("c1", "get_weather", "18C"))
    assert rows[0]["preferred_output"] == [{"role": "assistant", "content": "Paris: 18C, mild."}]


def test_nemo_rl_dpo_rows(tmp_path: Path) -> None:
    _, rows, _ = dpo(tmp_path, "nemo-rl")
    _, trl_rows, _ = dpo(tmp_path, "trl")
    for row, same in zip(rows, trl_rows, strict=True):
        assert row["context"] == same["prompt"]
        assert row["completions"] == [
            {"rank": 0, "completion": same["chosen"]},
            {"rank": 1, "completion": same["rejected"]},
        ]
        assert row["chosen_reward"] > row["rejected_reward"]
        assert set(row) == {
            "context",
            "completions",
            "chosen_reward",
            "rejected_reward",
            "margin",
            "prompt_id",
            "env",
        }


def test_openai_dpo_skips_pairs_that_are_not_one_assistant_message(tmp_path: Path) -> None:
    acc, rows, _ = dpo(tmp_path, "openai")
    assert acc["pairs"] == 4 and acc["written"] == 2
    assert acc["skipped"] == {"not_single_assistant_message": 2}  # the weather and the game pairs
    assert rows[0] == {
        "input": {
            "messages": [{"role": "user", "content": "What is 2+2?"}],
            "tools": [],
            "parallel_tool_calls": False,
        },
        "preferred_output": [{"role": "assistant", "content": think_text("Add them.", "4")}],
        "non_preferred_output": [{"role": "assistant", "content": "5"}],
    }
    assert rows[1] == {
        "input": {
            "messages": [{"role": "user", "content": "Find both."}],
            "tools": CHAT_TOOLS[1:],
            "parallel_tool_calls": True,
        },
        "preferred_output": [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "p1",
                        "type": "function",
                        "function": {"name": "search", "arguments": '{"query": "a"}'},
                    },
                    {
                        "id": "p2",
                        "type": "function",
                        "function": {"name": "search", "arguments": '{"query": "b"}'},
                    },
                ],
            }
        ],
        "non_preferred_output": [{"role": "assistant", "content": "Nothing found."}],
    }


def test_sharegpt_dpo_rows_are_llamafactory_pairwise_rows(tmp_path: Path) -> None:
    acc, rows, _ = dpo(tmp_path, "sharegpt")
    assert acc["pairs"] == 4 and acc["written"] == 2
    assert acc["skipped"] == {"not_single_sharegpt_turn": 2}  # the weather and the game pairs
    assert rows[0] == {
        "conversations": [{"from": "human", "value": "What is 2+2?"}],
        "chosen": {"from": "gpt", "value": think_text("Add them.", "4")},
        "rejected": {"from": "gpt", "value": "5"},
        "system": "",
        "tools": "[]",
    }
    assert rows[1]["chosen"]["from"] == "function_call"  # parallel calls: one turn, a list of them
    assert json.loads(rows[1]["chosen"]["value"]) == [
        {"name": "search", "arguments": {"query": "a"}},
        {"name": "search", "arguments": {"query": "b"}},
    ]
    assert rows[1]["rejected"] == {"from": "gpt", "value": "Nothing found."}
    assert json.loads(rows[1]["tools"]) == CHAT_TOOLS[1:]
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    entry = info["dpo-sharegpt"]
    assert entry["file_name"] == "dpo-sharegpt.jsonl" and entry["ranking"] is True
    assert entry["columns"] == {
        "messages": "conversations",
        "system": "system",
        "tools": "tools",
        "chosen": "chosen",
        "rejected": "rejected",
    }


# --- the fast assembly against a slow reference -----------------------------------------------------------------


def ref_style(messages: list[dict[str, Any]], reasoning: str, arguments: str) -> list[dict[str, Any]]:
    """The rendering rules, written out plainly: reasoning to a field, inline tags or nowhere; arguments as
    objects or the original JSON string."""
    out = []
    for msg in messages:
        msg = dict(msg)
        if msg["role"] == "assistant":
            thought = msg.pop("reasoning_content", None)
            if thought is not None and reasoning == "field":
                msg["reasoning_content"] = thought
            elif thought is not None and reasoning == "think":
                msg["content"] = f"<think>\n{thought}\n</think>\n\n{msg.get('content') or ''}"
            if "tool_calls" in msg and arguments == "object":
                msg["tool_calls"] = [
                    {**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}}
                    for c in msg["tool_calls"]
                ]
        out.append(msg)
    return out


def ref_trim(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    while messages and messages[-1]["role"] != "assistant":
        messages = messages[:-1]
    return messages


def ref_row(good: Rollout, bad: Rollout, fmt: str, reasoning: str) -> dict[str, Any] | None:
    arguments = "string" if fmt == "openai" else "object"
    prompt = ref_style(good.prompt, reasoning, arguments)
    chosen = ref_style(ref_trim(good.completion), reasoning, arguments)
    rejected = ref_style(ref_trim(bad.completion), reasoning, arguments)
    extra = {
        "chosen_reward": good.reward,
        "rejected_reward": bad.reward,
        "margin": good.reward - bad.reward,
        "prompt_id": good.prompt_id,
        "env": environment_of(good),  # the pair's environment: no agent_ref here, so the file's stem
    }
    if fmt == "trl":
        return {
            "prompt": prompt,
            "chosen": chosen,
            "rejected": rejected,
            "tools": good.tools,
            **extra,
            "chosen_id": good.rollout_id,
            "rejected_id": bad.rollout_id,
        }
    if fmt == "nemo-rl":
        return {
            "context": prompt,
            "completions": [{"rank": 0, "completion": chosen}, {"rank": 1, "completion": rejected}],
            **extra,
        }
    single = [len(side) == 1 and side[0]["role"] == "assistant" for side in (chosen, rejected)]
    if not all(single):
        return None
    parallel = any(len(m.get("tool_calls") or ()) > 1 for m in chosen + rejected)
    return {
        "input": {"messages": prompt, "tools": good.tools, "parallel_tool_calls": parallel},
        "preferred_output": chosen,
        "non_preferred_output": rejected,
    }


def decoded(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("tools"), str):
        row = {**row, "tools": json.loads(row["tools"])}
    return row


@pytest.mark.parametrize(
    ("fmt", "reasoning"), [("trl", "field"), ("nemo-rl", "think"), ("openai", "think"), ("trl", "drop")]
)
def test_fast_dpo_assembly_equals_a_slow_reference(
    tmp_path: Path, examples_dir: Path, fmt: str, reasoning: str
) -> None:
    rollouts = {r.rollout_id: r for r in read_rollouts([str(examples_dir)]) if isinstance(r, Rollout)}
    out = tmp_path / "dpo.jsonl"
    acc = make_dpo(
        [str(examples_dir)], str(out), EVERY, DpoOptions(format=fmt, reasoning=reasoning), workers=1
    )
    rows = read_jsonl(out)
    # the trl rows name the pair; the other formats come in the same order
    trl = make_dpo([str(examples_dir)], str(tmp_path / "trl.jsonl"), EVERY, DpoOptions(), workers=1)
    pairs = [(r["chosen_id"], r["rejected_id"]) for r in read_jsonl(tmp_path / "trl.jsonl")]
    assert trl["pairs"] == acc["pairs"] == len(pairs) > 100
    expected = [ref_row(rollouts[c], rollouts[r], fmt, reasoning) for c, r in pairs]
    assert [decoded(row) for row in rows] == [e for e in expected if e is not None]
    assert acc["skipped"] == (
        {"not_single_assistant_message": expected.count(None)} if None in expected else {}
    )
    if fmt == "openai":
        assert 0 < acc["written"] < acc["pairs"]


@pytest.mark.parametrize("fmt", ["trl", "nemo-rl", "openai"])
@pytest.mark.parametrize("lazy", [False, True])
def test_assemble_on_pieces_equals_the_reference(tmp_path: Path, fmt: str, lazy: bool) -> None:
    """A format's pair row straight from pieces of raw-text (pipeline) and plain-text (reader) records."""
    src = write_jsonl(tmp_path / "in.jsonl", DPO_ROWS)
    decoder = LineDecoder(lazy_text=lazy, arguments="string" if fmt == "openai" else "object")
    rollouts = {r.fields["task_id"]: r for r in read_rollouts([src], decoder) if isinstance(r, Rollout)}
    plain = {r.fields["task_id"]: r for r in read_rollouts([src]) if isinstance(r, Rollout)}
    reasoning = "think" if fmt == "openai" else "field"
    for good, bad in [
        ("w_good", "w_bad"),
        ("g_win", "g_lose"),
        ("m_right", "m_wrong"),
        ("p_calls", "p_none"),
        ("w_guess", "w_bad"),
    ]:
        g, b = rollouts[good], rollouts[bad]
        info = PairInfo(g.reward, b.reward, g.prompt_id, g.rollout_id, b.rollout_id, environment_of(g))
        want = ref_row(plain[good], plain[bad], fmt, reasoning)
        form = format_named(fmt)
        styling = form.styling(reasoning)
        try:
            row = form.pair_row(pieces(to_record(g), styling), pieces(to_record(b), styling), info)
            got = decoded(json.loads(msgspec.json.encode(row)))
        except Skip as skip:
            assert want is None and skip.reason == "not_single_assistant_message"
            continue
        assert got == want


def test_dpo_pairs_only_within_a_prompt_and_counts_facts(tmp_path: Path) -> None:
    acc, rows, _ = dpo(tmp_path, "trl")
    grouped: Counter = Counter(r["prompt_id"] for r in rows)
    assert set(grouped.values()) == {1}
    # --reasoning drop removes reasoning from both sides
    _, rows, _ = dpo(tmp_path, "trl", reasoning="drop")
    assert all("reasoning_content" not in m for r in rows for m in r["chosen"] + r["rejected"] + r["prompt"])
    acc, _, _ = dpo(tmp_path, "trl")
    assert acc["lines"] == len(DPO_ROWS) and acc["rejected"] == {}


def test_sft_with_filters_still_exports_every_format(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [TOOLS_ROW, GAME_ROW, HISTORY_ROW, DANGLING_ROW])
    for fmt in ("trl", "openai", "nemo-rl", "sharegpt"):
        acc = make_sft(
            [src],
            str(tmp_path / f"{fmt}.jsonl"),
            FilterOptions(require_tool_use=True, success_only=False),
            SftOptions(format=fmt),
            workers=1,
        )
        check_sft_accounting(acc)
        assert acc["written"] == 2 and acc["filtered"] == {"no_tool_use": 2}


def test_pretty_printed_arguments_keep_one_row_per_line(tmp_path: Path) -> None:
    """Agents may send arguments as indented JSON; copied verbatim, its newlines would split the JSONL row."""
    pretty = call("c1", "run_code")
    arguments = {"code": "print(1)\nprint(2)", "limits": {"seconds": 5, "ratio": 2.5}}
    pretty["arguments"] = json.dumps(arguments, indent=2)
    tools = [tool("run_code", "code")]
    rows = [
        rollout("Run it.", [pretty, result("c1", "1\n2"), answer("Done.")], 1.0, tools=tools),
        rollout("Run it.", [pretty, answer("Skipped.")], 0.0, tools=tools),
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    for fmt in ("trl", "openai", "nemo-rl", "sharegpt"):
        out = tmp_path / f"sft-{fmt}.jsonl"
        acc = make_sft([src], str(out), EVERY, options=SftOptions(format=fmt), workers=1)
        lines = out.read_bytes().splitlines()
        assert len(lines) == acc["written"] == 2
        text = out.read_text()
        assert text.count("\n") == 2 and arguments["code"] not in text  # the newline stays escaped
        if fmt != "sharegpt":
            call_out = json.loads(lines[0])["messages"][1]["tool_calls"][0]["function"]["arguments"]
            assert (json.loads(call_out) if fmt == "openai" else call_out) == arguments
    for fmt in ("trl", "nemo-rl", "openai"):
        out = tmp_path / f"dpo-{fmt}.jsonl"
        acc = make_dpo([src], str(out), EVERY, options=DpoOptions(format=fmt), workers=1, allow_empty=True)
        assert len(out.read_bytes().splitlines()) == acc["written"] == (0 if fmt == "openai" else 1)
        if fmt == "trl":
            row = read_jsonl(out)[0]
            assert row["chosen"][0]["tool_calls"][0]["function"]["arguments"] == arguments
