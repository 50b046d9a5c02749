"""``build --extra-formats`` adds formats to the release's default ones (trl and nemo-rl), any combination
builds, and every export note a format made (text dropped, messages trimmed, rows or pairs it could not hold)
is in the manifest and the dataset card."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from gym_rollouts import answer, call, result, rollout, think, tool, user, write_jsonl

from rollforge.build.recipe import make_recipe
from rollforge.cli.main import main
from rollforge.errors import RollforgeError
from rollforge.export.formats import SFT_FORMATS


def rollouts(tmp_path: Path) -> str:
    """Two prompts with a pair each: the chosen side talks beside its tool call (sharegpt drops that text)
    and ends on a tool output (trimmed); the rejected side is two assistant messages (no OpenAI pair)."""
    lookup = tool("lookup", "q")
    rows = []
    for n in range(2):
        chosen = [
            think("I should look it up."),
            {**answer("Looking it up."), "id": f"m{n}"},
            call(f"c{n}", "lookup", q=f"x{n}"),
            result(f"c{n}", "found"),
            answer(f"It is x{n}."),
            call(f"d{n}", "lookup", q="again"),
            result(f"d{n}", "dangling"),  # after the model's last turn: trimmed
        ]
        rejected = [answer("No idea."), answer("Really.")]
        prompt = [user(f"what is x{n}?")]
        rows += [rollout(prompt, chosen, 1.0, tools=[lookup]), rollout(prompt, rejected, 0.0, tools=[lookup])]
    return write_jsonl(tmp_path / "r.jsonl", rows)


def build(tmp_path: Path, *flags: str) -> Path:
    out = tmp_path / "releases"
    assert main(["build", rollouts(tmp_path), "-o", str(out), "--val-fraction", "0", "--quiet", *flags]) == 0
    return out / "v1"


def folders(release: Path) -> set[str]:
    return {p.name for p in release.iterdir() if p.is_dir()} - {"review", "trainer-configs"}


@pytest.mark.parametrize("flags", [["openai", "sharegpt"], ["openai,sharegpt"], ["openai,", "sharegpt"]])
def test_extra_formats_add_to_nemo_rl(tmp_path: Path, flags: list[str]) -> None:
    release = build(tmp_path, "--extra-formats", *flags)
    assert folders(release) == {"sft", "dpo", "nemo-rl", "openai", "sharegpt"}
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["recipe"]["extra_formats"] == ["openai", "sharegpt"]
    assert set(manifest["accounting"]["formats"]) == {"nemo-rl", "openai", "sharegpt"}
    assert (release / "trainer-configs" / "nemo_rl_sft.yaml").exists()


COMBINATIONS = [
    list(c) for n in range(1, len(SFT_FORMATS) + 1) for c in itertools.combinations(SFT_FORMATS, n)
]


@pytest.mark.parametrize("extra", COMBINATIONS, ids=[",".join(c) for c in COMBINATIONS])
def test_any_combination_builds(tmp_path: Path, extra: list[str]) -> None:
    recipe = {"inputs": [rollouts(tmp_path)], "output": str(tmp_path / "rel"), "extra_formats": extra}
    from rollforge.build.release import build as build_release

    made = build_release(make_recipe({**recipe, "workers": 1, "val_fraction": 0.0}))
    wanted = {"nemo-rl", *extra} - {"trl"}
    assert folders(made.path) == {"sft", "dpo", *wanted}
    assert set(made.manifest["accounting"]["formats"]) == wanted


def test_an_unknown_extra_format_is_named(tmp_path: Path) -> None:
    with pytest.raises(RollforgeError, match=r"'extra_formats\.1'.*'trl', 'openai', 'nemo-rl' or 'sharegpt'"):
        make_recipe({"inputs": [rollouts(tmp_path)], "output": "x", "extra_formats": "openai,shargpt"})


def test_every_export_note_is_in_the_manifest_and_the_card(tmp_path: Path) -> None:
    release = build(tmp_path, "--extra-formats", "openai", "sharegpt")
    acc: dict[str, Any] = json.loads((release / "manifest.json").read_text())["accounting"]
    assert acc["sft"]["export"] == {"trimmed_trailing_messages": 2}
    sharegpt = acc["formats"]["sharegpt"]
    assert sharegpt["sft_export"] == {"trimmed_trailing_messages": 2, "sharegpt_text_beside_calls": 4}
    assert acc["formats"]["openai"]["dpo_skipped"] == {"not_single_assistant_message": 2}
    assert acc["formats"]["openai"]["dpo"] == {"train": 0, "validation": 0}
    card = " ".join((release / "README.md").read_text().split())
    for line in (
        "| trl | SFT | trimmed_trailing_messages: messages after the model's last turn",
        "| sharegpt | SFT | sharegpt_text_beside_calls: assistant text or reasoning beside tool calls "
        "dropped (a sharegpt function_call turn holds the calls only) | 4 |",
        "| openai | DPO | pairs not written, not_single_assistant_message: a side is not exactly one "
        "assistant message (the OpenAI preference format's only shape) | 2 |",
    ):
        assert line in card
