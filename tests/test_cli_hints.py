"""Mistakes get the fix: a --where (or --balance-by, --success-field) field no rollout has is refused with
"did you mean" over the fields seen; a misspelled flag or command gets "did you mean"; a missing optional
extra gets the one-line install hint, never a traceback; no --help shows a doubled %."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from gym_rollouts import answer, rollout, write_jsonl

import rollforge
from rollforge.cli.main import COMMANDS, main
from rollforge.errors import RollforgeError


def runs(tmp_path: Path, n: int = 3, **fields: object) -> str:
    rows = [rollout(f"{i}+{i}?", [answer(str(2 * i))], 1.0, task_name="math") for i in range(n)]
    return write_jsonl(
        tmp_path / "runs.jsonl", [*rows, *([rollout("x?", [answer("y")], **fields)] if fields else [])]
    )


@pytest.mark.parametrize(
    ("flags", "message", "hint"),
    [
        (["--where", "rewrd > 0.5"], "--where reads the field 'rewrd', which no rollout has", "did you mean 'reward'?"),
        (["--where", "task_nme == 'math'"], "'task_nme'", "did you mean 'task_name'"),
        (["--balance-by", "tsk_name", "--max-per-category", "2"], "--balance-by reads the field 'tsk_name'", "task_name"),
        (["--success-field", "is_corect"], "--success-field reads the field 'is_corect'", "fields seen:"),
    ],
)  # fmt: skip
def test_a_field_no_rollout_has_is_refused_with_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str, hint: str
) -> None:
    path = runs(tmp_path)
    for command in ("sft", "dpo", "build"):
        out = str(tmp_path / ("rel" if command == "build" else f"{command}.jsonl"))
        if command == "dpo" and flags[0] == "--balance-by":
            continue  # a cap shapes the SFT set only: dpo has no --balance-by
        assert main([command, path, "-o", out, "-q", *flags]) == 1, command
        err = capsys.readouterr().err
        assert message in err and hint in err and err.count("\n") == 1, err


def test_compare_refuses_a_grouping_field_no_rollout_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = runs(tmp_path)
    assert main(["compare", path, path, "--by", "task_nme"]) == 1
    assert (
        "--by reads the field 'task_nme', which no rollout has (did you mean 'task_name'"
        in capsys.readouterr().err
    )
    assert main(["compare", path, path, "--by", "task_name", "--json"]) == 0


def test_a_field_only_far_into_a_file_is_found(tmp_path: Path) -> None:
    """Fields seen are the first rows' keys; one that only appears later is still a field of the inputs."""
    path = runs(tmp_path, 80, rare_flag=True)
    acc = rollforge.sft(path, tmp_path / "o.jsonl", where="rare_flag == True")
    assert acc["written"] == 1 and acc["filtered"] == {"where_false": 80}


def test_the_built_in_names_are_always_fields(tmp_path: Path) -> None:
    path = runs(tmp_path)
    acc = rollforge.sft(
        path, tmp_path / "o.jsonl", where="reward >= 1 and task_type == 'math' and prompt_id != ''"
    )
    assert acc["written"] == 3


def test_where_on_the_real_files(shared_rollouts: Path, tmp_path: Path) -> None:
    with pytest.raises(RollforgeError, match="did you mean 'reward'"):
        rollforge.sft(shared_rollouts, tmp_path / "o.jsonl", where="rewrd > 0.5")
    acc = rollforge.sft(shared_rollouts, tmp_path / "o.jsonl", where="expected_answer != None")
    assert acc["written"] > 0


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (
            ["sft", "x.jsonl", "-o", "o.jsonl", "--min-rewad", "0.5"],
            "--min-rewad: did you mean --min-reward?",
        ),
        (["build", "x.jsonl", "--val-fracton", "0.2"], "--val-fracton: did you mean --val-fraction?"),
        (["sfft", "x.jsonl"], "sfft: did you mean sft?"),
        (["train", "sft", "--modl", "m"], "--modl: did you mean --model?"),  # after "--model is required"
    ],
)
def test_a_misspelled_flag_or_command_gets_did_you_mean(
    capsys: pytest.CaptureFixture[str], argv: list[str], suggestion: str
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert suggestion in capsys.readouterr().err


BLOCKED = """\
import sys
sys.modules[{module!r}] = None  # as if the extra were not installed
from rollforge.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("starlette", ["review", "{runs}", "--db", "{tmp}/r.sqlite", "--port", "0"], "review"),
        ("torch", ["train", "sft", "--model", "m", "--data", "{tmp}", "-o", "{tmp}/run"], "train"),
        ("datasets", ["train", "sft", "--model", "m", "--data", "{tmp}", "-o", "{tmp}/run"], "train"),
        ("math_verify", ["collect", "{tasks}", "-o", "{tmp}/o.jsonl", "--base-url", "http://127.0.0.1:9/v1",
                         "--model", "m", "--verifier", "math"], "eval"),
    ],
)  # fmt: skip
def test_a_missing_extra_prints_the_install_line(
    tmp_path: Path, module: str, argv: list[str], extra: str
) -> None:
    path = runs(tmp_path)
    tasks = write_jsonl(
        tmp_path / "tasks.jsonl", [{"responses_create_params": {"input": "1+1?"}, "expected_answer": "2"}]
    )
    argv = [a.format(runs=path, tmp=tmp_path, tasks=tasks) for a in argv]
    src = Path(rollforge.__file__).resolve().parents[1]  # the rollforge under test
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED.format(module=module), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 1, done.stderr
    assert f"install it with: pip install 'rollforge[{extra}]'" in done.stderr
    assert "Traceback" not in done.stderr and "ModuleNotFoundError" not in done.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_no_help_shows_a_doubled_percent_sign(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert out and "%%" not in out
