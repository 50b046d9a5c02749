"""Hostile rollout lines (one per defect of issue 14) and a file that mixes them with good ones.

Each line is a real-shaped rollout with one poisoned part, written as raw JSON text (``1e400`` or a
400-digit integer cannot be produced by ``json.dumps``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gym_rollouts import answer, call, result, rollout, tool, user

DEEP = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
BIG_INT = "9" * 400


def _with(row: dict[str, Any], raw: str) -> str:
    """The row as JSON with the string "@RAW@" replaced by ``raw`` (any JSON text, valid or not)."""
    return json.dumps(row).replace('"@RAW@"', raw)


def _calling(arguments: Any = "{}", parameters: Any = None, reward: float = 1.0, **fields: Any) -> dict:
    weather = tool("weather", "city")
    if parameters is not None:
        weather["parameters"]["properties"]["city"]["default"] = parameters
    output = [call("c1", "weather"), result("c1", "sunny"), answer("It is sunny.")]
    output[0]["arguments"] = arguments
    return rollout([user("Weather in Paris?")], output, reward, tools=[weather], **fields)


# name -> (line with reward 1, the reason every command must give it; None: a rollout kept as any other)
HOSTILE: dict[str, tuple[str, str | None]] = {
    "arguments_1e400": (_with(_calling(arguments="@RAW@"), '{"city": 1e400}'), "number_out_of_range"),
    "tool_schema_1e400": (_with(_calling(parameters="@RAW@"), "1e400"), "number_out_of_range"),
    "deep_unread_field": (_with(_calling(junk="@RAW@"), DEEP), "too_deep"),
    "deep_metadata": (_with(_calling(metadata="@RAW@"), DEEP_OBJECT), "too_deep"),
    "deep_arguments": (_with(_calling(arguments="@RAW@"), DEEP_OBJECT), "too_deep"),
    "deep_tool_schema": (_with(_calling(parameters="@RAW@"), DEEP), "too_deep"),
    "tool_int_past_64_bits": (_with(_calling(parameters="@RAW@"), str(1 << 70)), "number_out_of_range"),
    "tool_int_400_digits": (_with(_calling(parameters="@RAW@"), BIG_INT), "number_out_of_range"),
    "arguments_int_400_digits": (_with(_calling(arguments="@RAW@"), f'{{"city": {BIG_INT}}}'), "number_out_of_range"),
    "huge_finite_reward": (_with(_calling(reward="@RAW@"), "1e200"), None),
    "no_assistant_turn_malformed_item": (
        json.dumps(rollout([user("Hi")], [{"type": "message", "role": "user", "content": [1, 2]}])),
        "malformed_item",
    ),
}  # fmt: skip


def pairable(line: str) -> list[str]:
    """The line twice, with rewards 1 and 0 (so that DPO would pair them)."""
    return [line, line.replace('"reward": 1.0', '"reward": 0.0')]


def good_lines(examples_dir: Path, count: int) -> list[str]:
    """``count`` usable rollout lines of the bundled example corpus, from all three environments."""
    lines: list[str] = []
    for name in ("tool_calling", "math_reasoning", "support_chat"):
        for raw in (examples_dir / f"{name}.jsonl").read_text().splitlines():
            obj = json.loads(raw) if raw.startswith("{") else None
            if (
                isinstance(obj, dict)
                and isinstance(obj.get("response"), dict)
                and obj.get("reward") is not None
            ):
                lines.append(raw)
                if len(lines) % (count // 3 + 1) == 0:
                    break
    return lines[:count]


def mixed_file(path: Path, good: list[str], hostile: list[str]) -> Path:
    """The good lines with the hostile ones in the middle."""
    half = len(good) // 2
    path.write_text("".join(line + "\n" for line in [*good[:half], *hostile, *good[half:]]))
    return path
