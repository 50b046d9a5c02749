"""README = CLI: every `$ rollforge ...` command the README's tour shows on the bundled example (and the data
steps of the loop, in the README and docs/loop.md) is run, and its printed summary is checked against the README's text.

A JSON block must equal the command's JSON. A text block is read as pieces separated by `...` (a line that is
or holds `...` elides output): each piece, whitespace collapsed (the README wraps long lines by hand), must
appear in the command's output, in order. Commands run where `examples/rollouts` is the bundled example."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from rollforge.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
LOOP = (ROOT / "docs" / "loop.md").read_text()  # the loop's walk-through shows the same data steps
# The commands that need no model, no server and no network: the tour, and the loop's data steps.
RUNNABLE = ("inspect", "sft", "dpo", "kto", "sample", "build", "example")
# What they run on: the bundled example, or the corpus the loop's first step writes (`rollouts`). Sections on
# other corpora (../shared, a recipe of their own) are not part of the tour.
ON_THE_EXAMPLE = (" examples/rollouts", "rollforge example -o rollouts", "rollforge build rollouts ")


def shown_commands() -> list[tuple[str, str]]:
    """(command, the text the README shows after it) for each `$ rollforge CMD ...` line of a text block."""
    found = []
    for block in re.findall(r"```text\n(.*?)```", README + LOOP, re.DOTALL):
        pieces = re.split(r"^\$ (.*)$", block, flags=re.MULTILINE)
        for command, shown in zip(pieces[1::2], pieces[2::2], strict=True):
            words = command.split()
            made_by_a_model = any(
                w in ("before.jsonl", "after.jsonl") or w.startswith("runs/") for w in words
            )
            on_example = any(part in command + " " for part in ON_THE_EXAMPLE)
            if words[:1] == ["rollforge"] and words[1] in RUNNABLE and on_example and not made_by_a_model:
                found.append((command, shown))
    return found


COMMANDS = shown_commands()


def squash(text: str) -> str:
    return " ".join(text.split())


def check_text(shown: str, printed: str) -> None:
    pieces = re.split(r"^.*\.\.\..*$", shown, flags=re.MULTILINE)
    at, flat = 0, squash(printed)
    for piece in filter(None, (squash(p) for p in pieces)):
        found = flat.find(piece, at)
        assert found >= 0, f"the README shows:\n{piece}\nbut the command printed:\n{printed}"
        at = found + len(piece)


def test_the_readme_shows_the_tour() -> None:
    names = {command.split()[1] for command, _ in COMMANDS}
    assert names == set(RUNNABLE), names


@pytest.mark.parametrize(("command", "shown"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_a_readme_command_prints_what_the_readme_shows(
    command: str,
    shown: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shutil.copytree(ROOT / "examples" / "rollouts", tmp_path / "examples" / "rollouts")
    if " rollouts -o releases" in command:  # the loop builds from the corpus its first step wrote
        assert main(["example", "-o", str(tmp_path / "rollouts")]) == 0
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps nothing: the README's own line breaks are ignored
    capsys.readouterr()
    assert main(command.split()[1:]) == 0
    captured = capsys.readouterr()
    if shown.lstrip().startswith("{"):
        assert json.loads(captured.out) == json.loads(shown)
    else:
        check_text(shown, captured.err + captured.out)  # the summary on stderr, then what was written


def test_example_writes_exactly_the_rollouts_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`example --rollouts 50000` wrote 49,992 (whole tasks of 4 per environment); now exactly 50,000."""
    assert main(["example", "-o", str(tmp_path), "--rollouts", "50000", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)["rollouts"]
    assert sum(counts.values()) == 50000
    written = sum(
        1
        for name in counts
        for line in (tmp_path / f"{name}.jsonl").read_bytes().splitlines()
        if b'"response"' in line and b'"reward"' in line
    )
    assert written >= 50000 - 10  # the bad lines the example adds on purpose are not rollouts


def subset_equal(shown: object, actual: object) -> bool:
    """``shown`` (the README's, numbers rounded to 4 places) is part of ``actual``."""
    if isinstance(shown, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset_equal(v, actual[k]) for k, v in shown.items()
        )
    if isinstance(shown, float):
        return isinstance(actual, int | float) and abs(shown - actual) <= 1e-4 * max(1.0, abs(actual))
    return shown == actual


def test_the_readme_json_of_the_real_files(shared_rollouts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shown = re.search(r"real NeMo Gym example files.*?```json\n(.*?)```", README, re.DOTALL)
    assert shown is not None
    assert main(["inspect", str(shared_rollouts), "--json"]) == 0
    actual = json.loads(capsys.readouterr().out)
    readme = json.loads(shown.group(1))
    for key, value in readme.items():
        assert subset_equal(value, actual[key]), (key, value, actual[key])
