"""The README documents every stable code a user may meet, and the commands it shows exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rollforge.cli.main import build_parser
from rollforge.pairs import UNPAIRED_REASONS
from rollforge.reasons import FILTER_REASONS, REJECT_REASONS

ROOT = Path(__file__).resolve().parents[1]

README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("code", [*REJECT_REASONS, *FILTER_REASONS, *UNPAIRED_REASONS])
def test_every_reason_code_is_documented(code: str) -> None:
    assert f"`{code}`" in README


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
