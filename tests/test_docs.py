"""The README documents every stable code a user may meet, and the commands it shows exist."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from rollforge.cli.main import build_parser
from rollforge.pairs import UNPAIRED_REASONS
from rollforge.reasons import FILTER_REASONS, REJECT_REASONS

ROOT = Path(__file__).resolve().parents[1]

README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("code", [*REJECT_REASONS, *UNPAIRED_REASONS])
def test_every_reason_code_is_documented(code: str) -> None:
    assert f"`{code}`" in README


def build_help() -> str:
    parser = build_parser("build")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(sub.choices["build"].format_help().split())


@pytest.mark.parametrize("code", FILTER_REASONS)
def test_every_filter_reason_is_documented(code: str) -> None:
    """A filter's code is printed beside its flag in --help (from its declaration); the README names those
    that no flag turns on (no_assistant_turn, a format's) and the ones the tour meets."""
    assert f"`{code}`" in README or re.search(rf"\[[^\]]*\b{code}\b[^\]]*\]", build_help())


def test_the_help_names_each_filters_reason_beside_its_flag() -> None:
    text = build_help()
    assert "--min-reward MIN_REWARD drop rollouts with reward below this [below_min_reward]" in text
    assert "[duplicate, near_duplicate]" in text


def test_readme_opens_with_the_two_setup_commands() -> None:
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_every_command_in_the_readme_exists() -> None:
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    code = "\n".join(README.split("```")[1::2]) + "\n" + "\n".join(re.findall(r"`([^`\n]+)`", README))
    used = set(re.findall(r"(?:^|\$ |`)rollforge ([a-z]+)", code, flags=re.MULTILINE))
    assert used <= commands, used - commands


def test_every_picture_in_the_readme_exists() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert "docs/review-pair.png" in pictures
    assert [p for p in pictures if not (ROOT / p).is_file()] == []
